"""What Hugging Face transformers makes of ../shared/models/tinystories-656k: token ids of a few
texts, their decoding, and 40 greedy tokens after two prompts (float64 and float32). The constants
in engine/src/test/java/io/kvant/engine/forward/TinyStories656kTest.java come from its output.

Run where transformers and torch are installed (the GPU machine has them; it ran there with
transformers 5.17.0, torch 2.11.0), from a folder holding the model as `hfcheck/`:

    cp -r ../shared/models/tinystories-656k hfcheck && python3 hf_reference.py
"""
import json, sys, torch, transformers
from transformers import AutoTokenizer, AutoModelForCausalLM
print("transformers", transformers.__version__, "torch", torch.__version__)
d = "hfcheck"
tok = AutoTokenizer.from_pretrained(d)
out = {}
for text in ["Once upon a time,", "Once upon a time, there was a little girl named Lily.", "Hello world", "Tom and Sue  like   cats!\nThe end.", "Café ünïcode ☃ 42"]:
    enc = tok(text)["input_ids"]
    out.setdefault("encode", {})[text] = enc
    out.setdefault("decode", {})[text] = tok.decode(enc, skip_special_tokens=True)
for dtype in [torch.float64, torch.float32]:
    model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=dtype)
    model.eval()
    for prompt in ["Once upon a time,", "Once upon a time, there was a little girl named Lily."]:
        ids = torch.tensor([tok(prompt)["input_ids"]])
        with torch.no_grad():
            g = model.generate(ids, max_new_tokens=40, do_sample=False, eos_token_id=None, pad_token_id=0)
            logits = model(ids).logits[0, -1]
        out.setdefault("greedy_" + str(dtype), {})[prompt] = g[0, ids.shape[1]:].tolist()
        out.setdefault("last_logits_head_" + str(dtype), {})[prompt] = logits[:8].tolist()
        out.setdefault("text_" + str(dtype), {})[prompt] = tok.decode(g[0], skip_special_tokens=True)
print(json.dumps(out, indent=1, ensure_ascii=False))
