// What the native backend is built from: the tfjs-node addon's sources and libtensorflow out of a
// TensorFlow wheel on PyPI. Versions and hashes are pinned: a changed file is refused, not used.
export const TFJS_NODE_VERSION = '4.22.0';

/** Link names binding.gyp and the package's install script look for, pointing at the wheel's libraries. */
const LINKS = {
  'libtensorflow.so': 'libtensorflow_cc.so.2',
  'libtensorflow.so.2': 'libtensorflow_cc.so.2',
  'libtensorflow.so.2.9.1': 'libtensorflow_cc.so.2',
  'libtensorflow_framework.so': 'libtensorflow_framework.so.2',
  'libtensorflow_framework.so.2.9.1': 'libtensorflow_framework.so.2',
};

const TENSORFLOW_LIBS = ['tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'];

export const VARIANTS = {
  cpu: {
    key: `tfjs-node-${TFJS_NODE_VERSION}_tensorflow-cpu-2.12.1_linux-x64`,
    package: '@tensorflow/tfjs-node',
    wheels: [
      {
        name: 'tensorflow-cpu',
        version: '2.12.1',
        file: 'tensorflow_cpu-2.12.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl',
        sha256: '7ffb595707a8fb376deaddc768784c7a0242b16cbc6e06393b1733b2ce19f855',
        libs: TENSORFLOW_LIBS,
        includeRoot: 'tensorflow/include/',
      },
    ],
    links: LINKS,
  },
  // TensorFlow 2.20 (CUDA 12.5, cuDNN 9.3): the first wheel whose libtensorflow finds the CUDA
  // libraries of the nvidia-* wheels by its own rpath ($ORIGIN/../nvidia/<lib>/lib), so they sit in
  // deps/nvidia/ and nothing needs LD_LIBRARY_PATH. The driver (libcuda.so.1) is the host's.
  gpu: {
    key: `tfjs-node-gpu-${TFJS_NODE_VERSION}_tensorflow-2.20.0_cu12.5-cudnn9.3_linux-x64`,
    package: '@tensorflow/tfjs-node-gpu',
    wheels: [
      {
        name: 'tensorflow',
        version: '2.20.0',
        file: 'tensorflow-2.20.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl',
        sha256: '481499fd0f824583de8945be61d5e827898cdaa4f5ea1bc2cc28ca2ccff8229e',
        libs: TENSORFLOW_LIBS,
        includeRoot: 'tensorflow/include/',
      },
      nvidia('cuda-runtime', '12.5.82', '3e79a060e126df40fd3a068f3f787eb000fa51b251ec6cd97d09579632687115'),
      nvidia('cublas', '12.5.3.2', 'ca070ad70e9fa6654084575d01bd001f30cc4665e33d4bb9fc8e0f321caa034b'),
      nvidia('cudnn', '9.3.0.75', '9ad9c6929ebb5295eb4a1728024666d1c88283373e265a0c5c883e6f9d5cd76d'),
      nvidia('cufft', '11.2.3.61', '9a6e8df162585750f61983a638104a48c756aa13f9f48e19ab079b38e3c828b8'),
      nvidia('cusolver', '11.6.3.83', '93cfafacde4428b71778eeb092ec615a02a3d05404da1bcf91c53e3fa1bce42b'),
      nvidia('cusparse', '12.5.1.3', '016df8e993c437e8301e62739f01775cba988fd5253cd4c64173f8e8d2f8e752'),
      nvidia('nvjitlink', '12.5.82', 'f9b37bc5c8cf7509665cb6ada5aaa0ce65618f2332b7d3e78e9790511f111212'),
    ],
    links: LINKS,
  },
};

/** A CUDA 12 wheel whose nvidia/<lib>/lib/*.so* go, as they are (already stripped), under deps/. */
function nvidia(lib, version, sha256) {
  const name = `nvidia-${lib}-cu12`;
  return {
    name,
    version,
    file: `${name.replaceAll('-', '_')}-${version}-py3-none-manylinux2014_x86_64.whl`,
    sha256,
    // Multi-GPU and BLAS-shim libraries TensorFlow never opens: 100 MB left out.
    tree: { under: 'nvidia/', skip: ['libcusolverMg', 'libnvblas', 'libcufftw'] },
  };
}
