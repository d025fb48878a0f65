"""One-off generator of the expected token ids in crates/infer/tests/model.rs (kept for provenance).

Independent of pith-infer's Rust code: reads the GGUF with the `gguf` package, builds a byte-level
BPE tokenizer from its vocabulary and merges with the Python `tokenizers` package, configured as
the SmolLM2 (StarCoder2 "cosmo2") tokenizer.json is: each digit split off (`Digits(individual)`),
then GPT-2 byte-level pre-tokenization with add_prefix_space OFF; the 17 control tokens
(token_type 3) as special tokens. The prompt text is rendered with jinja2 from the chat template
stored in the GGUF (`tokenizer.chat_template`), add_generation_prompt=True, then encoded whole.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install tokenizers gguf jinja2
    /tmp/v/bin/python crates/infer/tests/data/expected_ids.py ~/.cache/pith/models/SmolLM2-135M-Instruct.gguf
"""
import json
import sys

import jinja2
from gguf import GGUFReader
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

CASES = {
    # No system message: the template inserts its default system prompt.
    "USER_ONLY": [{"role": "user", "content": "What is 2+2? Answer in one word."}],
    # Explicit system message, multi-turn, non-ASCII, double spaces, a digit run, trailing newline.
    "MULTI_TURN": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Héllo  wörld 🙂, count 12345!"},
        {"role": "assistant", "content": "Hi.\n"},
        {"role": "user", "content": "Again?"},
    ],
}


def main(path):
    r = GGUFReader(path)
    f = r.fields
    tokens = f["tokenizer.ggml.tokens"].contents()
    types = f["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ", 1)) for m in f["tokenizer.ggml.merges"].contents()]
    template = f["tokenizer.chat_template"].contents()
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])
    env = jinja2.Environment()
    for name, messages in CASES.items():
        text = env.from_string(template).render(messages=messages, add_generation_prompt=True)
        ids = tok.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids, skip_special_tokens=False) == text
        print(f"// {name}: {json.dumps(text)}")
        print(f"const {name}: [u32; {len(ids)}] = {ids};")


if __name__ == "__main__":
    main(sys.argv[1])
