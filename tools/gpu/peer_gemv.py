#!/usr/bin/env python3
"""PyTorch's own decode products on the Llama-3-8B layer matrices, timed as kvant's `CudaBench gemv`
times its kernels: each launch reads another copy of the weights (far more than the L2 holds), the
launches are captured in one CUDA graph and the graph's replay is timed (median of 5), so the
figures carry no host launch cost. Run on the GPU host beside `CudaBench gemv` (tools/gpu/run.sh
peers) so the two compare on one machine in one call.

Products: bf16 `F.linear` (1 row), int4 tinygemm `_weight_int4pack_mm` (group 128, 1 row), FP8
`_scaled_mm` (E4M3 per-tensor scales; 16 rows, its smallest M). Prints a markdown table.
"""
import statistics
import torch

MATRICES = [(4096, 4096), (1024, 4096), (14336, 4096), (4096, 14336), (128256, 4096)]
LAUNCHES = 20


def graph_us(fns):
    """Median microseconds per launch of the callables fns (one per weight copy), graph-replayed."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for f in fns[:3]:
            f()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(LAUNCHES):
            fns[i % len(fns)]()
    times = []
    for _ in range(6):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) * 1000 / LAUNCHES)
    return statistics.median(times[1:])


def copies_for(nbytes):
    return max(2, min(LAUNCHES, (1 << 30) // max(nbytes, 1)))


def main():
    dev = torch.device("cuda")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    print("| matrix (out x in) | bf16 F.linear, 1 row | int4 tinygemm g128, 1 row | fp8 _scaled_mm, 16 rows |")
    print("| --- | ---: | ---: | ---: |")
    for out, inn in MATRICES:
        cells = []
        # bf16
        try:
            n = copies_for(out * inn * 2)
            ws = [torch.randn(out, inn, device=dev, dtype=torch.bfloat16) for _ in range(n)]
            x = torch.randn(1, inn, device=dev, dtype=torch.bfloat16)
            cells.append(f"{graph_us([lambda w=w: torch.nn.functional.linear(x, w) for w in ws]):.1f}")
            del ws
        except Exception as e:  # noqa: BLE001 - report and go on
            cells.append(f"failed: {type(e).__name__}: {str(e)[:60]}")
        # int4 tinygemm
        try:
            n = copies_for(out * inn // 2)
            packed = []
            for _ in range(n):
                q = torch.randint(0, 256, (out, inn // 2), device=dev, dtype=torch.uint8)
                packed.append(torch.ops.aten._convert_weight_to_int4pack(q, 8))
            sz = torch.randn(inn // 128, out, 2, device=dev, dtype=torch.bfloat16) * 0.01
            x = torch.randn(1, inn, device=dev, dtype=torch.bfloat16)
            cells.append(
                f"{graph_us([lambda p=p: torch.ops.aten._weight_int4pack_mm(x, p, 128, sz) for p in packed]):.1f}"
            )
            del packed
        except Exception as e:  # noqa: BLE001
            cells.append(f"failed: {type(e).__name__}: {str(e)[:60]}")
        # fp8 _scaled_mm
        try:
            n = copies_for(out * inn)
            ws = [
                torch.randn(out, inn, device=dev, dtype=torch.bfloat16).to(torch.float8_e4m3fn)
                for _ in range(n)
            ]
            a = torch.randn(16, inn, device=dev, dtype=torch.bfloat16).to(torch.float8_e4m3fn)
            one = torch.ones((), device=dev, dtype=torch.float32)
            cells.append(
                f"{graph_us([lambda w=w: torch._scaled_mm(a, w.t(), one, one, out_dtype=torch.bfloat16) for w in ws]):.1f}"
            )
            del ws
        except Exception as e:  # noqa: BLE001
            cells.append(f"failed: {type(e).__name__}: {str(e)[:60]}")
        torch.cuda.empty_cache()
        print(f"| {out}x{inn} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
