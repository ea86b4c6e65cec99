"""A float64 numpy forward pass of a llama-architecture GGUF, independent of train.py's model.

It reads only what the GGUF file says (metadata and tensors parsed by gguf_io.read_gguf), so it
checks the exporter as well as the weights: the golden token ids that kvant is tested against
come from here.
"""

import numpy as np


class Reference:
    def __init__(self, meta, tensors):
        g = lambda k: meta["llama." + k]  # noqa: E731
        self.dim = g("embedding_length")
        self.n_layers = g("block_count")
        self.n_heads = g("attention.head_count")
        self.n_kv = g("attention.head_count_kv")
        self.eps = g("attention.layer_norm_rms_epsilon")
        self.theta = g("rope.freq_base")
        self.hd = self.dim // self.n_heads
        assert g("rope.dimension_count") == self.hd
        self.ctx = g("context_length")
        w = lambda name: np.asarray(tensors[name], dtype=np.float64)  # noqa: E731
        self.emb = w("token_embd.weight")  # [vocab, dim]
        self.out = w("output.weight") if "output.weight" in tensors else self.emb
        self.out_norm = w("output_norm.weight")
        self.layers = []
        for i in range(self.n_layers):
            p = f"blk.{i}."
            self.layers.append({k: w(p + k + ".weight") for k in (
                "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")})
        half = self.hd // 2
        self.inv_freq = self.theta ** (-(2.0 * np.arange(half)) / self.hd)

    def _norm(self, x, w):
        return x / np.sqrt(np.mean(x * x) + self.eps) * w

    def _rope(self, v, pos):
        # v: [heads, hd]; rotate the adjacent pairs (v[2i], v[2i+1]) by pos * inv_freq[i].
        a = pos * self.inv_freq
        c, s = np.cos(a), np.sin(a)
        x0, x1 = v[:, 0::2], v[:, 1::2]
        out = np.empty_like(v)
        out[:, 0::2] = x0 * c - x1 * s
        out[:, 1::2] = x0 * s + x1 * c
        return out

    def new_cache(self):
        return {"pos": 0, "k": [[] for _ in range(self.n_layers)],
                "v": [[] for _ in range(self.n_layers)]}

    def step(self, cache, tok):
        """Feeds one token at position cache["pos"]; returns the logits for the next token."""
        pos = cache["pos"]
        group = self.n_heads // self.n_kv
        x = self.emb[tok].copy()
        for li, L in enumerate(self.layers):
            h = self._norm(x, L["attn_norm"])
            q = (L["attn_q"] @ h).reshape(self.n_heads, self.hd)
            k = (L["attn_k"] @ h).reshape(self.n_kv, self.hd)
            v = (L["attn_v"] @ h).reshape(self.n_kv, self.hd)
            q, k = self._rope(q, pos), self._rope(k, pos)
            cache["k"][li].append(k)
            cache["v"][li].append(v)
            K, V = np.stack(cache["k"][li]), np.stack(cache["v"][li])  # [t, n_kv, hd]
            att = np.empty((self.n_heads, self.hd))
            for hh in range(self.n_heads):
                kv = hh // group
                sc = K[:, kv, :] @ q[hh] / np.sqrt(self.hd)
                sc = np.exp(sc - sc.max())
                att[hh] = (sc / sc.sum()) @ V[:, kv, :]
            x = x + L["attn_output"] @ att.reshape(-1)
            h = self._norm(x, L["ffn_norm"])
            gate, up = L["ffn_gate"] @ h, L["ffn_up"] @ h
            x = x + L["ffn_down"] @ (gate / (1.0 + np.exp(-gate)) * up)
        cache["pos"] = pos + 1
        return self.out @ self._norm(x, self.out_norm)

    def greedy(self, prompt_ids, n_new):
        """Greedy continuation (no stop at EOS). Returns (new ids, smallest top1-top2 logit gap,
        top-10 (id, logit) after the prompt)."""
        cache = self.new_cache()
        for tok in prompt_ids:
            logits = self.step(cache, tok)
        new, gaps, top10 = [], [], None
        for step in range(n_new):
            if step:
                logits = self.step(cache, new[-1])
            order = np.argsort(-logits, kind="stable")
            if step == 0:
                top10 = [[int(i), round(float(logits[i]), 5)] for i in order[:10]]
            gaps.append(float(logits[order[0]] - logits[order[1]]))
            new.append(int(order[0]))
        return new, min(gaps), top10
