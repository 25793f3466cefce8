import { promptText } from '../engine/trace/prompt.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUILTIN_SPECIAL_TOKENS,
  BuiltinTokenizer,
  builtinTokenizer,
  loadTokenizer,
  loadTokenizerSync,
  saveTokenizer,
  type ChatMessage,
  type TextTokenizer,
} from '../engine/tokenizer/index.js';

// The reference implementation is Hugging Face's own Python stack (Rust `tokenizers` + `transformers`),
// run once per file: it trains two tiny byte-level BPE tokenizers, then reports ids / decodes / chat
// renderings for every tokenizer directory under test. Our TypeScript side must agree exactly.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PYTHON = process.env.RETOOL_TEST_PYTHON ?? join(ROOT, '.venv', 'bin', 'python');

const FENCE = '```';
const TRACE =
  'We need 4821*397+1150. Let me compute it.\n' +
  `<code>\n${FENCE}python\nprint(4821*397+1150)\nd = {"a": [1, 2], 'b': r"\\d+"}\n    print(d)  # indented\n${FENCE}\n</code>` +
  '<interpreter>\n1915087\n</interpreter>\n' +
  'So the result is $4821 \\times 397 + 1150 = 1{,}915{,}087$.\n\n' +
  '<answer>\\boxed{1915087}</answer><|endoftext|>';

const TEXTS = [
  TRACE,
  'é€🙂 naïve café — ünïcödé 日本語 ∑x² 🙂🙂',
  'e\u0301 vs \u00e9', // decomposed vs composed (the Qwen-style tokenizer NFC-normalizes)
  '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<code>x=1</code><|im_end|>',
  '  leading spaces\tand\r\nCRLF and trailing   \n\n\n   ',
  "don't WE'LL it's 12345678901234567890 x**2 >= y_1 {a: [1, 2]} \\boxed{\\frac{1}{2}} ~!@#$%^&*()",
  '<code <cod </code > <<code>> <|im_end <|unk|> <|pad|><|endoftext|><answer></answer></interpreter>',
  'a\u00a0b\u200bc\u0000d\u007f',
  '',
  TRACE.repeat(20),
];
const PREFIX_TEXT = 1;

const CHATS: [ChatMessage[], boolean][] = [
  [
    [
      { role: 'system', content: 'Solve the problem. Use Python via <code> blocks.' },
      { role: 'user', content: 'What is 4821*397+1150?' },
      { role: 'assistant', content: TRACE },
    ],
    true,
  ],
  [
    [
      { role: 'user', content: 'Compute 2+2.' },
      { role: 'assistant', content: '<answer>\\boxed{4}</answer>' },
      { role: 'user', content: '  and é€🙂?\n' },
    ],
    true,
  ],
  [[{ role: 'user', content: 'hi' }], false],
];

interface Oracle {
  raw_ids: number[][];
  raw_decode: string[];
  auto_ids: number[][];
  auto_decode: string[];
  prefix_decode: string[];
  vocab_size: number;
  eos_id: number;
  pad_id: number;
  special_ids: number[];
  chat: string[];
}

const PY_ORACLE = String.raw`import json, os, sys
from tokenizers import Tokenizer, Regex, decoders, models, normalizers, pre_tokenizers, processors, trainers

req = json.load(sys.stdin)
out = {}

CHATML = (
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "{%- else %}\n"
    "    {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if not (message.role == 'system' and loop.first) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n"
)
QWEN_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<code>", "</code>"]

def corpus():
    import random
    rng = random.Random(0)
    words = ["the", "answer", "is", "compute", "python", "print", "result", "value", "number", "sum", "product",
             "let", "us", "check", "with", "code", "interpreter", "output", "total", "équation", "café", "naïve"]
    lines = []
    for i in range(400):
        a, b = rng.randint(0, 99999), rng.randint(1, 999)
        ws = " ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
        lines.append(f"{ws} {a}*{b}+{i} = {a*b+i}")
        fence = chr(96) * 3
        lines.append(f"{fence}python\nprint({a} * {b} + {i})\n{fence}\n{a*b+i}")
        lines.append("    x = [n ** 2 for n in range(" + str(b) + ")]  # sum → " + str(sum(n*n for n in range(b))))
    return lines

def train(kind, path):
    tok = Tokenizer(models.BPE(unk_token=None))
    if kind == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    else:  # Qwen2-style: NFC + regex split + byte-level, specials appended after the BPE vocab
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ])
        trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.train_from_iterator(corpus(), trainer)
    if kind != "gpt2":
        tok.add_special_tokens(SPECIALS)
    os.makedirs(path, exist_ok=True)
    tok.save(os.path.join(path, "tokenizer.json"))
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": None, "eos_token": "<|im_end|>",
                   "pad_token": "<|endoftext|>", "clean_up_tokenization_spaces": False, "model_max_length": 32768,
                   "chat_template": CHATML}, f, indent=2)

for kind, path in req.get("train", {}).items():
    train(kind, path)

from transformers import AutoTokenizer
for name, path in req["dirs"].items():
    raw = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(path)
    r = {"raw_ids": [], "raw_decode": [], "auto_ids": [], "auto_decode": [],
         "vocab_size": raw.get_vocab_size(with_added_tokens=True),
         "eos_id": auto.eos_token_id, "pad_id": auto.pad_token_id,
         "special_ids": sorted(set(auto.all_special_ids))}
    for t in req["texts"]:
        ids = raw.encode(t, add_special_tokens=False).ids
        r["raw_ids"].append(ids)
        r["raw_decode"].append(raw.decode(ids, skip_special_tokens=False))
        a = auto.encode(t, add_special_tokens=False)
        r["auto_ids"].append(a)
        r["auto_decode"].append(auto.decode(a, skip_special_tokens=False))
    # every prefix of the ids of the unicode-heavy text: partial UTF-8 sequences mid-stream
    ids = r["raw_ids"][req["prefix_text"]]
    r["prefix_decode"] = [raw.decode(ids[:k], skip_special_tokens=False) for k in range(1, len(ids) + 1)]
    r["chat"] = [auto.apply_chat_template(m, tokenize=False, add_generation_prompt=g) for m, g in req["chats"]]
    out[name] = r
json.dump(out, sys.stdout, ensure_ascii=True)
`;

let work: string;
let dirs: Record<'builtin' | 'gpt2' | 'qwen', string>;
let oracle: Record<string, Oracle>;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'retool-tokenizer-test-'));
  dirs = { builtin: join(work, 'builtin'), gpt2: join(work, 'bpe-gpt2'), qwen: join(work, 'bpe-qwen') };
  await saveTokenizer(dirs.builtin, builtinTokenizer());
  const request = { train: { gpt2: dirs.gpt2, qwen: dirs.qwen }, dirs, texts: TEXTS, prefix_text: PREFIX_TEXT, chats: CHATS };
  const res = await execa(PYTHON, ['-c', PY_ORACLE], {
    input: JSON.stringify(request),
    env: { TOKENIZERS_PARALLELISM: 'false', HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', TRANSFORMERS_VERBOSITY: 'error' },
    timeout: 90_000,
  });
  oracle = JSON.parse(res.stdout) as Record<string, Oracle>;
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const o = (name: string): Oracle => {
  const r = oracle[name];
  if (!r) throw new Error(`no oracle result for ${name}`);
  return r;
};

describe('built-in tokenizer', () => {
  it('gives the built-in model the bare problem: its vocabulary was made for the trace format', () => {
    expect(promptText(builtinTokenizer(), 'Compute 2+3.')).toBe(
      builtinTokenizer().applyChatTemplate([{ role: 'user', content: 'Compute 2+3.' }], { addGenerationPrompt: true }),
    );
  });

  const tok = new BuiltinTokenizer();

  it('lays out ids: specials 0..7, newline, printable ASCII, unk', () => {
    BUILTIN_SPECIAL_TOKENS.forEach((s, i) => expect(tok.tokenToId(s)).toBe(i));
    expect(tok.tokenToId('\n')).toBe(8);
    expect(tok.tokenToId(' ')).toBe(9);
    expect(tok.tokenToId('~')).toBe(103);
    expect(tok.tokenToId('<|unk|>')).toBe(104);
    expect(tok.vocabSize).toBe(105);
    expect(tok.padId).toBe(0);
    expect(tok.eosId).toBe(1);
    expect([...tok.specialIds].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 104]);
    expect(tok.tokenToId('é')).toBeUndefined();
  });

  it('encodes each special token as a single token, also inside text', () => {
    for (const [i, s] of BUILTIN_SPECIAL_TOKENS.entries()) {
      expect(tok.encode(s)).toEqual([i]);
      expect(tok.encode(`a${s}b`)).toEqual([tok.tokenToId('a'), i, tok.tokenToId('b')]);
    }
    const ids = tok.encode(TRACE);
    for (const s of ['<code>', '</code>', '<interpreter>', '</interpreter>', '<answer>', '</answer>', '<|endoftext|>']) {
      expect(ids.filter((id) => id === tok.tokenToId(s))).toHaveLength(1);
    }
    // near-misses stay characters; greedy matching inside brackets
    expect(tok.encode('<cod')).toHaveLength(4);
    expect(tok.encode('<<code>>')).toEqual([tok.tokenToId('<'), 2, tok.tokenToId('>')]);
    expect(tok.encode('</code >')).toHaveLength(8);
  });

  it('round-trips a full ReTool trace and all printable ASCII exactly', () => {
    expect(tok.decode(tok.encode(TRACE))).toBe(TRACE);
    const ascii = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('') + '\n';
    expect(tok.encode(ascii)).toEqual([...Array.from({ length: 95 }, (_, i) => 9 + i), 8]);
    expect(tok.decode(tok.encode(ascii))).toBe(ascii);
    // no unk in a trace made of ASCII
    expect(tok.encode(TRACE).includes(104)).toBe(false);
    expect(tok.encode('')).toEqual([]);
    expect(tok.decode([])).toBe('');
  });

  it('maps every unknown code point to one unk', () => {
    expect(tok.encode('é€🙂\t\r')).toEqual([104, 104, 104, 104, 104]);
    expect(tok.encode('x🙂y')).toEqual([tok.tokenToId('x'), 104, tok.tokenToId('y')]);
    expect(tok.decode(tok.encode('a🙂'))).toBe('a<|unk|>');
  });

  it('renders its chat template', () => {
    expect(tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true })).toBe('user: hi\nassistant: ');
  });
});

describe('built-in tokenizer against Hugging Face (Python)', () => {
  const tok = builtinTokenizer();

  it('writes a tokenizer.json that Rust tokenizers encodes to the same ids and decodes back', () => {
    const r = o('builtin');
    expect(r.vocab_size).toBe(tok.vocabSize);
    TEXTS.forEach((t, i) => {
      expect(r.raw_ids[i], `text #${i}`).toEqual(tok.encode(t));
      expect(r.raw_decode[i], `text #${i}`).toBe(tok.decode(tok.encode(t)));
    });
    expect(r.raw_decode[0]).toBe(TRACE);
  });

  it('loads through transformers.AutoTokenizer with the same ids, eos/pad, specials and chat template', () => {
    const r = o('builtin');
    TEXTS.forEach((t, i) => {
      expect(r.auto_ids[i], `text #${i}`).toEqual(tok.encode(t));
      expect(r.auto_decode[i], `text #${i}`).toBe(tok.decode(tok.encode(t)));
    });
    expect(r.eos_id).toBe(tok.eosId);
    expect(r.pad_id).toBe(tok.padId);
    expect(r.special_ids).toEqual([...tok.specialIds].sort((a, b) => a - b));
    CHATS.forEach(([messages, gen], i) => expect(tok.applyChatTemplate(messages, { addGenerationPrompt: gen })).toBe(r.chat[i]));
  });

  it('loads back through loadTokenizer (tokenizers.js) with identical behaviour', async () => {
    const loaded = await loadTokenizer(dirs.builtin);
    for (const t of TEXTS) {
      expect(loaded.encode(t)).toEqual(tok.encode(t));
      expect(loaded.decode(tok.encode(t))).toBe(tok.decode(tok.encode(t)));
    }
    expect(loaded.vocabSize).toBe(tok.vocabSize);
    expect(loaded.eosId).toBe(tok.eosId);
    expect(loaded.padId).toBe(tok.padId);
    expect([...loaded.specialIds].sort((a, b) => a - b)).toEqual([...tok.specialIds].sort((a, b) => a - b));
    for (const s of [...BUILTIN_SPECIAL_TOKENS, '<|unk|>', '\n', ' ', 'a']) expect(loaded.tokenToId(s)).toBe(tok.tokenToId(s));
    CHATS.forEach(([messages, gen]) =>
      expect(loaded.applyChatTemplate?.(messages, { addGenerationPrompt: gen })).toBe(
        tok.applyChatTemplate(messages, { addGenerationPrompt: gen }),
      ),
    );
    const sync = loadTokenizerSync(dirs.builtin);
    expect(sync.encode(TRACE)).toEqual(tok.encode(TRACE));
  });
});

describe.each(['gpt2', 'qwen'] as const)('trained byte-level BPE (%s-style) against Hugging Face (Python)', (name) => {
  let tok: TextTokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(dirs[name]);
  });

  it('encodes to the same ids as Rust tokenizers and transformers', () => {
    const r = o(name);
    TEXTS.forEach((t, i) => {
      expect(tok.encode(t), `text #${i}`).toEqual(r.raw_ids[i]);
      expect(r.auto_ids[i], `text #${i}`).toEqual(r.raw_ids[i]);
    });
    // a real BPE: merges shorten the byte sequence, and ids beyond the 256-byte alphabet are used
    expect(tok.encode(TRACE).length).toBeLessThan(new TextEncoder().encode(TRACE).length * 0.8);
    // the specials really are single tokens
    for (const s of ['<|im_start|>', '<|im_end|>', '<code>', '</code>', '<|endoftext|>']) {
      const id = tok.tokenToId(s);
      expect(id).toBeDefined();
      expect(tok.encode(s)).toEqual([id]);
      expect(tok.specialIds.has(id!)).toBe(true);
    }
  });

  it('decodes like Rust tokenizers, including partial UTF-8 at every prefix', () => {
    const r = o(name);
    TEXTS.forEach((_, i) => expect(tok.decode(r.raw_ids[i]!), `text #${i}`).toBe(r.raw_decode[i]));
    TEXTS.forEach((_, i) => expect(r.auto_decode[i], `text #${i}`).toBe(r.raw_decode[i]));
    const ids = r.raw_ids[PREFIX_TEXT]!;
    expect(r.prefix_decode).toHaveLength(ids.length);
    r.prefix_decode.forEach((s, k) => expect(tok.decode(ids.slice(0, k + 1)), `prefix ${k + 1}`).toBe(s));
    // lossless where no normalization applies
    expect(tok.decode(tok.encode(TRACE))).toBe(TRACE);
    expect(tok.decode(tok.encode(TEXTS[1]!))).toBe(TEXTS[1]);
  });

  it('reads eos/pad/vocab size like transformers', () => {
    const r = o(name);
    expect(tok.eosId).toBe(r.eos_id);
    expect(tok.padId).toBe(r.pad_id);
    expect(tok.eosId).toBe(tok.tokenToId('<|im_end|>'));
    expect(tok.padId).toBe(tok.tokenToId('<|endoftext|>'));
    expect(tok.vocabSize).toBe(r.vocab_size);
    for (const id of r.special_ids) expect(tok.specialIds.has(id)).toBe(true);
  });

  it('renders the ChatML chat template exactly like transformers apply_chat_template', () => {
    const r = o(name);
    expect(tok.applyChatTemplate).toBeDefined();
    CHATS.forEach(([messages, gen], i) =>
      expect(tok.applyChatTemplate!(messages, { addGenerationPrompt: gen }), `chat #${i}`).toBe(r.chat[i]),
    );
    expect(r.chat[0]).toBe(
      '<|im_start|>system\nSolve the problem. Use Python via <code> blocks.<|im_end|>\n' +
        '<|im_start|>user\nWhat is 4821*397+1150?<|im_end|>\n' +
        `<|im_start|>assistant\n${TRACE}<|im_end|>\n` +
        '<|im_start|>assistant\n',
    );
    expect(r.chat[2]).toBe('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n');
  });

  it('keeps the hand-written ChatML template in tokenizer_config.json', () => {
    const cfg = JSON.parse(readFileSync(join(dirs[name], 'tokenizer_config.json'), 'utf8')) as { chat_template: string };
    expect(cfg.chat_template).toContain('add_generation_prompt');
  });
});
