#!/usr/bin/env python3
"""Writes the models of Tests/Fixtures/tokenizer/models from the conformance fixtures (run once; needs numpy).

  llama-bpe-base   llama-base's tensors, a Llama-style BPE tokenizer of 128 tokens, and a <pad> added at id 128
                   past its vocab_size (128): mergekit strips it.
  llama-bpe-m1     llama-ft-a's tensors plus 2 rows (130): its BPE vocab has "xyz" where the base has "<0x7F>",
                   and it adds <|im_start|> (special) and "hello" (ordinary).
  llama-bpe-m2     llama-ft-b's tensors plus 1 row (129): the base's vocab and <|im_start|>.
  llama-chatml-a, llama-chatml-b, llama-llama3-c
                   llama-ft-a/-b/-c with llama-base-tok's tokenizer and chat templates: chatml in
                   tokenizer_config.json (a, b; b's with a trailing newline), llama3 in chat_template.jinja (c).
"""
import json, os, shutil, struct
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CONF = os.path.join(HERE, "..", "conformance", "models")
OUT = os.path.join(HERE, "models")


def read_st(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32"
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=np.float32).reshape(info["shape"])
    return out


def write_st(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name], dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def model(name, src, extra_rows, vocab_size, seed):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    t = dict(read_st(os.path.join(CONF, src, "model.safetensors")))
    rng = np.random.default_rng(seed)
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        if extra_rows:
            t[key] = np.concatenate([t[key], rng.normal(0, 0.02, (extra_rows, t[key].shape[1])).astype(np.float32)])
    write_st(os.path.join(d, "model.safetensors"), t)
    cfg = json.load(open(os.path.join(CONF, src, "config.json")))
    cfg["vocab_size"] = vocab_size
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    return d


def bpe_tokenizer(replace=None, added=()):
    letters = list("abcdefghijklmnopqrstuvwxyz")
    tokens = ["<unk>", "<s>", "</s>", "\u2581"] + letters
    known, merges = set(tokens), []
    for piece in ["\u2581t", "\u2581a", "he", "in", "er", "an", "on", "\u2581the", "re", "at", "en", "nd", "\u2581s",
                  "\u2581w", "or", "es", "is", "it", "ou", "ed", "\u2581o", "\u2581c", "ar", "\u2581b", "\u2581f",
                  "\u2581h", "ing", "\u2581m", "\u2581p", "al", "le", "\u2581d"]:
        for k in range(len(piece) - 1, 0, -1):
            a, b = piece[:k], piece[k:]
            if a in known and b in known:
                merges.append(f"{a} {b}")
                break
        tokens.append(piece)
        known.add(piece)
    while len(tokens) < 128:
        tokens.append(f"<0x{len(tokens):02X}>")
    if replace:
        tokens[tokens.index(replace[0])] = replace[1]
    vocab = {t: i for i, t in enumerate(tokens)}
    std = [(0, "<unk>", True, False), (1, "<s>", True, False), (2, "</s>", True, False)]
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [dict(id=i, content=c, single_word=False, lstrip=False, rstrip=False, normalized=n, special=s)
                         for (i, c, s, n) in std + list(added)],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                           {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                                                     {"type": "ByteFallback"}, {"type": "Fuse"},
                                                     {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "vocab": vocab, "merges": merges},
    }


def tokenizer_config(**extra):
    tc = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "clean_up_tokenization_spaces": False,
          "eos_token": "</s>", "legacy": False, "model_max_length": 1000000000000000019884624838656, "pad_token": None,
          "padding_side": "right", "tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "<unk>"}
    tc.update(extra)
    return tc


def write_tokenizer(d, tok, tc):
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tok, f, indent=2, ensure_ascii=False)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=2, ensure_ascii=False)


CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
          "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLAMA3 = ("{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
          "message['content'] | trim + '<|eot_id|>' }}{% endfor %}")

if __name__ == "__main__":
    d = model("llama-bpe-base", "llama-base", 0, 128, 1)
    write_tokenizer(d, bpe_tokenizer(added=[(128, "<pad>", True, False)]), tokenizer_config())
    d = model("llama-bpe-m1", "llama-ft-a", 2, 130, 2)
    write_tokenizer(d, bpe_tokenizer(replace=("<0x7F>", "xyz"),
                                     added=[(128, "<|im_start|>", True, False), (129, "hello", False, True)]),
                    tokenizer_config())
    d = model("llama-bpe-m2", "llama-ft-b", 1, 129, 3)
    write_tokenizer(d, bpe_tokenizer(added=[(128, "<|im_start|>", True, False)]), tokenizer_config())
    for name, src, template in [("llama-chatml-a", "llama-ft-a", CHATML), ("llama-chatml-b", "llama-ft-b", CHATML + "\n"),
                                ("llama-llama3-c", "llama-ft-c", None)]:
        d = model(name, src, 0, 128, 4)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(CONF, "llama-base-tok", f), os.path.join(d, f))
        tc = json.load(open(os.path.join(d, "tokenizer_config.json")))
        if template:
            tc["chat_template"] = template
        else:
            with open(os.path.join(d, "chat_template.jinja"), "w") as f:
                f.write(LLAMA3)
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(tc, f, indent=2)
        with open(os.path.join(d, "generation_config.json"), "w") as f:
            json.dump({"bos_token_id": 1, "eos_token_id": 2, "temperature": 0.7}, f, indent=2)
