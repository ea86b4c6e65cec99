#!/usr/bin/env python3
"""Trains kvant's tiny Llama-architecture model from scratch and exports it as GGUF.

Steps (all in this one script, on a machine with PyTorch, sentencepiece, numpy and a GPU):
  1. SentencePiece BPE tokenizer on corpus/train.txt (skipped if --tokenizer is given).
  2. A Llama decoder (RMSNorm, adjacent-pair RoPE, grouped-query attention, SwiGLU, tied
     embedding/output, no biases) trained with AdamW + cosine LR in bf16 autocast, for
     --steps steps or until --time-budget seconds have passed, whichever comes first. The
     weights with the best loss on corpus/valid.txt are kept.
  3. Held-out perplexity on corpus/heldout.txt (per token and per byte), with the weights
     rounded to F16 exactly as exported.
  4. GGUF v3 export (gguf_io.py) with the tokenizer inside; the file is read back and a float64
     numpy forward pass (reference.py) produces the golden greedy ids; the torch model's
     greedy ids are compared with them.

See tools/train/README.md for the commands.
"""

import argparse
import hashlib
import json
import math
import os
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn as nn
import torch.nn.functional as F

import gguf_io
from gguf_io import Val
from reference import Reference

BOS, EOS, UNK = 1, 2, 0

GOLDEN_PROMPTS = [
    "",  # BOS only
    "In the beginning",
    "And the LORD said unto Moses",
    "Blessed are the",
    "The kingdom of heaven is like",
    "And Jesus answered and said",
]

TOKENIZER_CASES = [
    "In the beginning God created the heaven and the earth.",
    "Hello, world! How are you?",
    "In the year 1611, 2 + 2 = 4 and 3.14159 is pi.",
    "naïve café résumé — Zoë’s Ångström",
    "日本 and 神",
    "double  spaces   and    more",
    "line one\nline two\n\nend",
    "  leading spaces and trailing ",
    "tab\tseparated\tvalues",
    "\"Quoted\" (parenthesised) [bracketed] {braced} <angled> a/b\\c #@$%^&*_~|`",
    "emoji 🙂 at the end",
    "LORD's house: verily, verily; amen?",
    "",
]


# ---------------------------------------------------------------------------------------------
# Corpus and tokenizer


def read_chapters(path):
    with open(path, encoding="utf-8") as f:
        blocks = f.read().strip("\n").split("\n\n")
    # A chapter is one document: its verses joined by single spaces.
    return [" ".join(b.split("\n")) for b in blocks if b.strip()]


def train_tokenizer(train_txt, prefix, vocab_size, seed):
    # BPE training on every sentence, unshuffled, is deterministic; the seed is set anyway.
    if hasattr(spm, "set_random_generator_seed"):
        spm.set_random_generator_seed(seed)
    if hasattr(spm, "set_min_log_level"):
        spm.set_min_log_level(2)
    spm.SentencePieceTrainer.train(
        input=train_txt,
        model_prefix=prefix,
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=True,
        normalization_rule_name="identity",
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        split_digits=True,
        character_coverage=1.0,
        unk_id=UNK,
        bos_id=BOS,
        eos_id=EOS,
        pad_id=-1,
        input_sentence_size=0,  # use every sentence: no sampling
        shuffle_input_sentence=False,
        num_threads=8,
    )
    return prefix + ".model"


def encode_docs(sp, docs):
    return [[BOS] + sp.encode(d) + [EOS] for d in docs]


# ---------------------------------------------------------------------------------------------
# Model


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return xf.type_as(x) * self.weight


def rope_tables(head_dim, ctx, theta):
    inv = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    ang = torch.outer(torch.arange(ctx, dtype=torch.float64), inv)
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    # x: [B, T, H, hd]; adjacent pairs (x[2i], x[2i+1]) rotate by angle pos * theta^(-2i/hd).
    B, T, H, D = x.shape
    xf = x.float().view(B, T, H, D // 2, 2)
    x0, x1 = xf[..., 0], xf[..., 1]
    c, s = cos[:T].view(1, T, 1, D // 2), sin[:T].view(1, T, 1, D // 2)
    out = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1)
    return out.view(B, T, H, D).type_as(x)


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.n_heads, self.n_kv, self.hd = a.heads, a.kv_heads, a.dim // a.heads
        self.attn_norm = RMSNorm(a.dim, a.norm_eps)
        self.wq = nn.Linear(a.dim, a.heads * self.hd, bias=False)
        self.wk = nn.Linear(a.dim, a.kv_heads * self.hd, bias=False)
        self.wv = nn.Linear(a.dim, a.kv_heads * self.hd, bias=False)
        self.wo = nn.Linear(a.heads * self.hd, a.dim, bias=False)
        self.ffn_norm = RMSNorm(a.dim, a.norm_eps)
        self.w_gate = nn.Linear(a.dim, a.hidden, bias=False)
        self.w_up = nn.Linear(a.dim, a.hidden, bias=False)
        self.w_down = nn.Linear(a.hidden, a.dim, bias=False)
        self.dropout = a.dropout

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = apply_rope(self.wq(h).view(B, T, self.n_heads, self.hd), cos, sin)
        k = apply_rope(self.wk(h).view(B, T, self.n_kv, self.hd), cos, sin)
        v = self.wv(h).view(B, T, self.n_kv, self.hd)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        g = self.n_heads // self.n_kv
        # Query head h reads KV head h // g (llama.cpp's grouping).
        k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        y = y.transpose(1, 2).reshape(B, T, -1)
        x = x + F.dropout(self.wo(y), p, self.training)
        h = self.ffn_norm(x)
        y = self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))
        return x + F.dropout(y, p, self.training)


class Llama(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a
        self.tok = nn.Embedding(a.vocab, a.dim)
        self.blocks = nn.ModuleList(Block(a) for _ in range(a.layers))
        self.norm = RMSNorm(a.dim, a.norm_eps)
        cos, sin = rope_tables(a.dim // a.heads, a.ctx, a.rope_theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02
                if name.endswith("wo.weight") or name.endswith("w_down.weight"):
                    std = 0.02 / math.sqrt(2 * a.layers)
                nn.init.normal_(p, mean=0.0, std=std)

    def forward(self, idx):
        x = F.dropout(self.tok(idx), self.a.dropout, self.training)
        for b in self.blocks:
            x = b(x, self.cos, self.sin)
        # Tied output head: logits = norm(x) @ token_embd^T.
        return F.linear(self.norm(x), self.tok.weight)


# ---------------------------------------------------------------------------------------------
# Evaluation


def eval_windows(docs, ctx):
    """Strided windows over each document: every target is scored once, with at least ctx/2
    tokens of context except near a document's start. Returns (inputs, targets) int64 arrays;
    targets not scored are -100."""
    stride = ctx // 2
    xs, ys = [], []
    for d in docs:
        n = len(d) - 1  # targets d[1..n]
        begin, scored_to = 0, 0  # targets with index <= scored_to are done
        while True:
            end = min(begin + ctx, n)
            x = np.zeros(ctx, dtype=np.int64)
            y = np.full(ctx, -100, dtype=np.int64)
            x[: end - begin] = d[begin:end]
            for j in range(end - begin):
                t = begin + 1 + j
                if t > scored_to:
                    y[j] = d[t]
            xs.append(x)
            ys.append(y)
            scored_to = end
            if end >= n:
                break
            begin += stride
    return np.stack(xs), np.stack(ys)


@torch.no_grad()
def evaluate(model, windows, device, amp, batch=64):
    """Returns (sum of NLL in nats, number of scored tokens)."""
    was = model.training
    model.eval()
    xs, ys = windows
    total, count = 0.0, 0
    for i in range(0, len(xs), batch):
        x = torch.from_numpy(xs[i:i + batch]).to(device)
        y = torch.from_numpy(ys[i:i + batch]).to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
        nll = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1),
                              ignore_index=-100, reduction="sum")
        total += float(nll)
        count += int((y != -100).sum())
    model.train(was)
    return total, count


@torch.no_grad()
def torch_greedy(model, prompt_ids, n_new, device):
    model.eval()
    ids = list(prompt_ids)
    for _ in range(n_new):
        x = torch.tensor([ids[-model.a.ctx:]], device=device)
        ids.append(int(model(x)[0, -1].float().argmax()))
    return ids[len(prompt_ids):]


# ---------------------------------------------------------------------------------------------
# Export


def gguf_metadata(a, sp, name, description):
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(float(sp.get_score(i)))
        if sp.is_unknown(i):
            types.append(2)
        elif sp.is_control(i):
            types.append(3)
        elif sp.is_byte(i):
            types.append(6)
        elif sp.is_unused(i):
            types.append(5)
        else:
            types.append(1)
    U32, F32, S, B = gguf_io.T_UINT32, gguf_io.T_FLOAT32, gguf_io.T_STRING, gguf_io.T_BOOL
    return [
        ("general.architecture", Val(S, "llama")),
        ("general.name", Val(S, name)),
        ("general.description", Val(S, description)),
        ("general.license", Val(S, a.license)),
        ("general.file_type", Val(U32, 1)),  # mostly F16
        ("general.alignment", Val(U32, gguf_io.ALIGNMENT)),
        ("llama.vocab_size", Val(U32, a.vocab)),
        ("llama.context_length", Val(U32, a.ctx)),
        ("llama.embedding_length", Val(U32, a.dim)),
        ("llama.block_count", Val(U32, a.layers)),
        ("llama.feed_forward_length", Val(U32, a.hidden)),
        ("llama.attention.head_count", Val(U32, a.heads)),
        ("llama.attention.head_count_kv", Val(U32, a.kv_heads)),
        ("llama.rope.dimension_count", Val(U32, a.dim // a.heads)),
        ("llama.rope.freq_base", Val(F32, a.rope_theta)),
        ("llama.attention.layer_norm_rms_epsilon", Val(F32, a.norm_eps)),
        ("tokenizer.ggml.model", Val(S, "llama")),
        ("tokenizer.ggml.tokens", Val(gguf_io.T_ARRAY, tokens, S)),
        ("tokenizer.ggml.scores", Val(gguf_io.T_ARRAY, scores, F32)),
        ("tokenizer.ggml.token_type", Val(gguf_io.T_ARRAY, types, gguf_io.T_INT32)),
        ("tokenizer.ggml.bos_token_id", Val(U32, BOS)),
        ("tokenizer.ggml.eos_token_id", Val(U32, EOS)),
        ("tokenizer.ggml.unknown_token_id", Val(U32, UNK)),
        ("tokenizer.ggml.add_bos_token", Val(B, True)),
        ("tokenizer.ggml.add_eos_token", Val(B, False)),
        ("tokenizer.ggml.add_space_prefix", Val(B, True)),
    ]


def gguf_tensors(model):
    """(name, numpy array [out, in] / [n], ggml type) in llama.cpp's names; tied head omitted."""
    t = lambda p: p.detach().float().cpu().numpy()  # noqa: E731
    F16, F32 = gguf_io.GGML_F16, gguf_io.GGML_F32
    out = [("token_embd.weight", t(model.tok.weight), F16)]
    for i, b in enumerate(model.blocks):
        p = f"blk.{i}."
        out += [
            (p + "attn_norm.weight", t(b.attn_norm.weight), F32),
            (p + "attn_q.weight", t(b.wq.weight), F16),
            (p + "attn_k.weight", t(b.wk.weight), F16),
            (p + "attn_v.weight", t(b.wv.weight), F16),
            (p + "attn_output.weight", t(b.wo.weight), F16),
            (p + "ffn_norm.weight", t(b.ffn_norm.weight), F32),
            (p + "ffn_gate.weight", t(b.w_gate.weight), F16),
            (p + "ffn_up.weight", t(b.w_up.weight), F16),
            (p + "ffn_down.weight", t(b.w_down.weight), F16),
        ]
    out.append(("output_norm.weight", t(model.norm.weight), F32))
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="tools/train/corpus")
    ap.add_argument("--out", default="out")
    ap.add_argument("--name", default="kvant-kjv-7m")
    ap.add_argument("--license", default="CC0-1.0")
    ap.add_argument("--tokenizer", help="existing tokenizer .model (skip training one)")
    ap.add_argument("--seed", type=int, default=1611)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--norm-eps", type=float, default=1e-5)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--time-budget", type=float, default=500.0,
                    help="stop training after this many seconds (evaluation time excluded)")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--gen-tokens", type=int, default=32)
    ap.add_argument("--no-export", action="store_true", help="train and evaluate only")
    a = ap.parse_args()
    t_start = time.time()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    device = "cuda"
    # No TF32: the fp32 evaluation and greedy checks must be true fp32 (training uses bf16 autocast).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    log = {"args": vars(a)}

    # 1. tokenizer
    if a.tokenizer:
        sp_path = a.tokenizer
    else:
        t0 = time.time()
        sp_path = train_tokenizer(os.path.join(a.corpus, "train.txt"),
                                  os.path.join(a.out, "tokenizer"), a.vocab, a.seed)
        print(f"tokenizer trained in {time.time() - t0:.1f}s", flush=True)
    sp = spm.SentencePieceProcessor(model_file=sp_path)
    assert sp.get_piece_size() == a.vocab and sp.bos_id() == BOS and sp.eos_id() == EOS
    log["tokenizer_sha256"] = sha256(sp_path)

    docs = {s: read_chapters(os.path.join(a.corpus, s + ".txt")) for s in ("train", "valid", "heldout")}
    ids = {s: encode_docs(sp, d) for s, d in docs.items()}
    n_bytes = {s: sum(len(d.encode("utf-8")) + 1 for d in docs[s]) for s in docs}  # +1: EOS ~ newline
    train_ids = torch.tensor([t for d in ids["train"] for t in d], dtype=torch.long, device=device)
    n_train = len(train_ids)
    stats = {s: {"docs": len(docs[s]), "tokens": sum(len(d) for d in ids[s]), "bytes": n_bytes[s]} for s in docs}
    print("data:", json.dumps(stats), flush=True)
    log["data"] = stats
    valid_w = eval_windows(ids["valid"], a.ctx)
    held_w = eval_windows(ids["heldout"], a.ctx)

    # 2. model + training
    model = Llama(a).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params: {n_params} ({n_params / 1e6:.2f}M, tied output)", flush=True)
    log["params"] = n_params
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    gen = torch.Generator(device=device)
    gen.manual_seed(a.seed)
    offs = torch.arange(a.ctx + 1, device=device)

    def lr_at(step):
        if step < a.warmup:
            return a.lr * (step + 1) / a.warmup
        prog = min(1.0, (step - a.warmup) / max(1, a.steps - a.warmup))
        return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * prog)))

    best = {"loss": float("inf"), "step": -1}
    best_state = None
    curve = []
    t_train = time.time()
    step, train_loss_acc, eval_time = 0, 0.0, 0.0
    model.train()
    while step < a.steps and time.time() - t_train - eval_time < a.time_budget:
        for g_ in opt.param_groups:
            g_["lr"] = lr_at(step)
        starts = torch.randint(0, n_train - a.ctx - 1, (a.batch,), device=device, generator=gen)
        chunk = train_ids[starts[:, None] + offs]
        x, y = chunk[:, :-1], chunk[:, 1:]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x)
        loss = F.cross_entropy(logits.float().view(-1, a.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        train_loss_acc += loss.detach()
        step += 1
        if step % a.eval_every == 0 or step == a.steps:
            te = time.time()
            nll, cnt = evaluate(model, valid_w, device, amp=True)
            vl = nll / cnt
            tl = float(train_loss_acc) / a.eval_every
            train_loss_acc = 0.0
            el = time.time() - t_train - eval_time
            curve.append({"step": step, "train_loss": round(tl, 4), "valid_loss": round(vl, 4),
                          "lr": lr_at(step - 1), "train_s": round(el, 1)})
            mark = ""
            if vl < best["loss"]:
                best = {"loss": vl, "step": step}
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                mark = " *"
            eval_time += time.time() - te
            print(f"step {step:5d} lr {lr_at(step - 1):.2e} train {tl:.4f} valid {vl:.4f} "
                  f"ppl {math.exp(vl):.2f} t {el:.0f}s{mark}", flush=True)
    train_s = time.time() - t_train - eval_time
    tokens_seen = step * a.batch * a.ctx
    print(f"trained {step} steps in {train_s:.1f}s ({tokens_seen} tokens, "
          f"{tokens_seen / stats['train']['tokens']:.1f} epochs); best valid at step {best['step']}",
          flush=True)
    log.update(curve=curve, steps=step, train_seconds=round(train_s, 1), tokens_seen=tokens_seen,
               epochs=round(tokens_seen / stats["train"]["tokens"], 2), best_valid=best)
    if best_state is not None:
        model.load_state_dict(best_state)

    # 3. held-out perplexity: fp32 forward, weights as trained and as rounded to F16 for export.
    def ppl_report(tag):
        out = {}
        for split, w in (("valid", valid_w), ("heldout", held_w)):
            nll, cnt = evaluate(model, w, device, amp=False)
            out[split] = {"tokens": cnt, "bytes": n_bytes[split], "nll_per_token": nll / cnt,
                          "ppl_per_token": math.exp(nll / cnt),
                          "bits_per_byte": nll / n_bytes[split] / math.log(2),
                          "ppl_per_byte": math.exp(nll / n_bytes[split])}
        print(f"[{tag}] heldout ppl/token {out['heldout']['ppl_per_token']:.3f} "
              f"bits/byte {out['heldout']['bits_per_byte']:.4f} "
              f"(valid ppl/token {out['valid']['ppl_per_token']:.3f})", flush=True)
        return out

    log["eval_fp32_weights"] = ppl_report("fp32 weights")
    prompt_ids = [[BOS] + sp.encode(p) for p in GOLDEN_PROMPTS]
    greedy_fp32 = [torch_greedy(model, p, a.gen_tokens, device) for p in prompt_ids]
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(p.half().float())
    log["eval_f16_weights"] = ppl_report("f16-rounded weights")
    greedy_f16 = [torch_greedy(model, p, a.gen_tokens, device) for p in prompt_ids]
    card_samples = []
    for p in ["In the beginning", "And the LORD said unto Moses", "Blessed are the",
              "And it came to pass", "The LORD is my shepherd"]:
        g = torch_greedy(model, [BOS] + sp.encode(p), 64, device)
        card_samples.append({"prompt": p, "text": sp.decode(sp.encode(p) + g)})
    log["card_samples"] = card_samples
    for s in card_samples:
        print("sample:", json.dumps(s["text"]), flush=True)

    if a.no_export:
        with open(os.path.join(a.out, "train_log.json"), "w") as f:
            json.dump(log, f, indent=1)
        return

    # 4. GGUF export, read back, float64 reference, golden outputs.
    gguf_path = os.path.join(a.out, a.name + ".gguf")
    desc = (f"Tiny Llama-architecture model trained from scratch by kvant's tools/train on the "
            f"King James Version of the Bible (public domain); seed {a.seed}; for tests and demos.")
    gguf_io.write_gguf(gguf_path, gguf_metadata(a, sp, a.name, desc), gguf_tensors(model))
    digest = sha256(gguf_path)
    size = os.path.getsize(gguf_path)
    print(f"wrote {gguf_path}: {size} bytes, sha256 {digest}", flush=True)
    meta, tensors = gguf_io.read_gguf(gguf_path)
    assert meta["tokenizer.ggml.tokens"][:3] == ["<unk>", "<s>", "</s>"], meta["tokenizer.ggml.tokens"][:3]
    sd = {n: arr for n, arr, _ in gguf_tensors(model)}
    for n, arr in sd.items():  # the file holds exactly the (already F16-rounded) weights
        assert np.array_equal(np.asarray(tensors[n], dtype=np.float32), arr), n
    ref = Reference(meta, tensors)
    t0 = time.time()
    golden_prompts, mismatches = [], []
    for text, pids, g16, g32 in zip(GOLDEN_PROMPTS, prompt_ids, greedy_f16, greedy_fp32):
        new, gap, top10 = ref.greedy(pids, a.gen_tokens)
        golden_prompts.append({
            "prompt": text, "prompt_ids": pids, "generated_ids": new,
            "generated_text": sp.decode(new), "full_text": sp.decode(pids[1:] + new),
            "eos_at": new.index(EOS) if EOS in new else None,
            "min_top1_top2_logit_gap": round(gap, 5), "top10_after_prompt": top10,
            "torch_f16_weights_agree": new == g16, "torch_fp32_weights_agree": new == g32,
        })
        if new != g16 or new != g32:
            mismatches.append({"prompt": text, "reference": new, "torch_f16": g16, "torch_fp32": g32})
        print(f"golden {json.dumps(text)} -> {json.dumps(sp.decode(new))} (gap {gap:.3f}, "
              f"torch f16 {'=' if new == g16 else '!='}, fp32-weights {'=' if new == g32 else '!='})",
              flush=True)
    print(f"reference greedy in {time.time() - t0:.1f}s; mismatches: {len(mismatches)}", flush=True)
    # Logit-level check of torch (fp32, F16-rounded weights) against the float64 reference.
    chk = prompt_ids[2] + golden_prompts[2]["generated_ids"]
    cache = ref.new_cache()
    ref_logits = np.stack([ref.step(cache, t) for t in chk])
    model.eval()
    with torch.no_grad():
        tl = model(torch.tensor([chk], device=device))[0].double().cpu().numpy()
    max_diff = float(np.abs(tl - ref_logits).max())
    print(f"max |torch fp32 - float64 reference| logit difference over {len(chk)} positions: "
          f"{max_diff:.2e}", flush=True)
    log["max_logit_diff_torch_vs_reference"] = max_diff
    cases = []
    for s in TOKENIZER_CASES:
        tid = sp.encode(s)
        cases.append({"text": s, "ids": tid, "pieces": [sp.id_to_piece(i) for i in tid],
                      "decoded": sp.decode(tid)})
    golden = {
        "model": os.path.basename(gguf_path),
        "sha256": digest,
        "generation": {
            "max_new_tokens": a.gen_tokens, "decoding": "greedy (argmax, lowest id on ties)",
            "stop_at_eos": False, "bos_prepended": True,
            "reference": "float64 numpy forward pass of the weights read back from the GGUF file "
                         "(tools/train/reference.py)",
        },
        "prompts": golden_prompts,
        "tokenizer": {
            "note": "sentencepiece encode(text) of the tokenizer embedded in the GGUF, no BOS added",
            "cases": cases,
        },
    }
    with open(os.path.join(a.out, a.name + ".golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, indent=1, ensure_ascii=False)
        f.write("\n")
    log.update(gguf_bytes=size, gguf_sha256=digest, greedy_mismatches=mismatches,
               total_seconds=round(time.time() - t_start, 1),
               torch=torch.__version__, sentencepiece=spm.__version__,
               gpu=torch.cuda.get_device_name())
    with open(os.path.join(a.out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=1)
    print(f"done in {time.time() - t_start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
