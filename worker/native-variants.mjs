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
  gpu: null,
};
