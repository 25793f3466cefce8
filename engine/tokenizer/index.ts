export type { TextTokenizer, ChatMessage, ChatTemplateOptions } from './types.js';
export { ChatTemplate, type TemplateSpecialTokens } from './chat.js';
export {
  BuiltinTokenizer,
  builtinTokenizer,
  saveTokenizer,
  saveTokenizerSync,
  BUILTIN_SPECIAL_TOKENS,
  BUILTIN_PAD_TOKEN,
  BUILTIN_EOS_TOKEN,
  BUILTIN_UNK_TOKEN,
  BUILTIN_CHAT_TEMPLATE,
  type SavableTokenizer,
} from './builtin.js';
export { HfTokenizer, loadTokenizer, loadTokenizerSync } from './hf.js';
