/* Internal: one compiled copy per instruction set for the element-wise
 * loops of the step (optimizer rules, the gradient's norm, activations,
 * the batch gather), chosen once at load time from the CPU (GCC's
 * target_clones: an ifunc resolver). GCC only: Clang 14 (Debian 12) names
 * the clones of a function defined in one file and called from another
 * so that the call does not link, and Clang builds here are the fuzzing
 * ones, where speed does not matter. The library is built for
 * baseline x86-64, SSE2, so that one binary runs on every node of a
 * cluster; where the CPU has AVX2 these loops run twice as wide. They are
 * bound by the vector unit as much as by the cache: a Nesterov update is
 * 1.3-1.4x faster in its AVX2 copy on the test machine.
 * The AVX2 copy has no FMA (a separate extension, not enabled by "avx2"),
 * so every copy rounds exactly alike: results do not depend on the CPU. */
#ifndef DPT_CORE_CLONES_H
#define DPT_CORE_CLONES_H

#if defined(__x86_64__) && defined(__ELF__) && \
    defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define DPT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DPT_CLONES
#endif

#endif /* DPT_CORE_CLONES_H */
