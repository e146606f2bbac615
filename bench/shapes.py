"""The shapes benchmarked and checked (shared by gen_modules.py and run_bench.py).

Aggregation (attnres.aggregate, semantics section 2): N sources of T x D.
Phase 1 (attnres.block_score, semantics section 5): S queries against n block
summaries of T x D. The correctness sweep uses odd D and small T in every
storage type.
"""

from attnres import defaults

# The key-norm epsilon compiled into the benchmark kernels and passed to the
# baselines and references: the compiler's default (attnres.defaults).
EPSILON = defaults.epsilon()

# (N, T, D), bf16.
AGGREGATE_BENCH = [(9, 16384, 4096), (17, 16384, 4096), (9, 65536, 2048), (10, 8192, 7168)]

# (n, S, T, D), bf16.
SCORE_BENCH = [(n, s, 16384, d) for s in (6, 8) for d in (2048, 4096, 7168) for n in (5, 9)]

# Small token counts (decode, small-batch serving; issue 16 item 4): the
# benchmark libraries take any T, so these reuse them; (N, D) of aggregation,
# (n, S, D) of phase 1, D of the merge (with a partial sum), bf16.
SMALL_T = [1, 4, 16, 64, 256]
SMALL_T_AGGREGATE = [(9, 4096), (10, 7168)]
SMALL_T_SCORE = [(9, 8, 4096)]
SMALL_T_MERGE = [4096, 7168]


def small_t_pack_configs():
    """Kernel-pack model configurations (attnres.kernel_pack --config) whose
    kernels cover every small-T shape above: per D, a bf16 Block AttnRes
    model with blocks of S sublayers (the phase-1 shapes' S at that D, else
    the first phase-1 shape's) and enough blocks that its aggregations reach N sources and its
    phase 1 n summaries (a model with B blocks aggregates over up to B + 1
    sources and scores up to B summaries); the merges come with every
    config."""
    blocks, sizes = {}, {}
    block = SMALL_T_SCORE[0][1]
    for n, d in SMALL_T_AGGREGATE:
        blocks[d] = max(blocks.get(d, 1), n - 1)
    for n, s, d in SMALL_T_SCORE:
        blocks[d] = max(blocks.get(d, 1), n)
        sizes[d] = s
    for d in SMALL_T_MERGE:
        blocks.setdefault(d, 1)
    return [f"d={d},dtype=bf16,sublayers={sizes.get(d, block) * b},block={sizes.get(d, block)}"
            for d, b in sorted(blocks.items())]

SWEEP_DTYPES = ["f32", "f16", "bf16"]
# (N, leading token dims, D): rank 1 (one token), 2 and 3.
AGGREGATE_SWEEP = [(3, (7,), 13), (5, (33,), 100), (2, (5,), 4100), (1, (3,), 64),
                   (4, (2, 3), 100),
                   # the benchmark's D (vector paths), few tokens
                   (9, (4,), 4096), (10, (3,), 7168), (17, (2,), 2048)]
# (n, S, leading token dims, D)
SCORE_SWEEP = [(3, 2, (7,), 13), (5, 6, (9,), 100), (2, 3, (5,), 4100), (1, 1, (4,), 64),
               (4, 8, (2, 3), 100),
               (5, 6, (3,), 2048), (9, 8, (2,), 4096), (9, 8, (2,), 7168),
               # tensor-core kernel: n > 16 at D = 8192, S > 8, D % 32 != 0
               (17, 8, (3,), 8192), (3, 10, (5,), 200)]


def agg_name(dt, n, tokens, d):
    t = "x".join(str(x) for x in tokens) or "1tok"
    return "agg_%s_n%d_t%s_d%d" % (dt, n, t, d)


def merge_name(dt, d, partial=True):
    return "merge_%s_d%d%s" % (dt, d, "_partial" if partial else "")


def score_name(dt, n, s, tokens, d):
    t = "x".join(str(x) for x in tokens) or "1tok"
    return "score_%s_n%d_s%d_t%s_d%d" % (dt, n, s, t, d)
