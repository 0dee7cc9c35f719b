/* Zeroed allocations on huge pages (mem.h). */
#include "mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define DPT_HAVE_X86_FLUSH 1
#endif

#define HUGE_PAGE ((size_t)2 << 20)
#define SMALL_PAGE ((size_t)4096)

#if defined(__linux__) && !defined(MADV_COLLAPSE)
#define MADV_COLLAPSE 25 /* Linux 6.1; older kernels refuse it (EINVAL), no harm */
#endif

/* Huge pages for the whole 2 MiB stretches of [p, p + bytes); collapse:
 * also move what is there already into them. Advice only: a kernel
 * without THP leaves small pages, no harm. */
static void advise_stretches(void *p, size_t bytes, int collapse)
{
#ifdef MADV_HUGEPAGE
    uintptr_t lo = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    uintptr_t hi = ((uintptr_t)p + bytes) & ~(uintptr_t)(HUGE_PAGE - 1);
    if (hi <= lo) return;
    (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#ifdef MADV_COLLAPSE
    if (collapse) (void)madvise((void *)lo, hi - lo, MADV_COLLAPSE);
#endif
#else
    (void)p, (void)bytes, (void)collapse;
#endif
}

void *dpt_malloc_large(size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (bytes >= HUGE_PAGE) {
        void *p = NULL;
        size_t padded = (bytes + SMALL_PAGE - 1) & ~(SMALL_PAGE - 1);
        if (posix_memalign(&p, HUGE_PAGE, padded) != 0) return NULL;
        advise_stretches(p, bytes, 0); /* nothing there yet: the first touch faults them in */
        return p;
    }
#endif
    return malloc(bytes ? bytes : 1);
}

void dpt_advise_huge(void *p, size_t bytes)
{
    advise_stretches(p, bytes, 1);
}

void *dpt_calloc_large(size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) return NULL;
    if (bytes < HUGE_PAGE) return calloc(n, size);
    void *p = dpt_malloc_large(bytes);
    if (p) memset(p, 0, bytes); /* the first touch, after the advice, faults in huge pages */
    return p;
}

#ifdef DPT_HAVE_X86_FLUSH
#define CACHE_LINE ((size_t)64)

/* CPUID leaf 7, EBX bit 23: CLFLUSHOPT */
static int has_clflushopt(void)
{
    static int known = -1; /* a benign race: every thread finds the same answer */
    if (known < 0) {
        unsigned a, b, c, d;
        known = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 23));
    }
    return known;
}

__attribute__((target("clflushopt"))) static void flush_lines(const char *begin, const char *end)
{
    for (const char *line = begin; line < end; line += CACHE_LINE) _mm_clflushopt((void *)line);
    _mm_sfence();
}

void dpt_cache_evict(const void *p, size_t bytes)
{
    if (bytes == 0 || !has_clflushopt()) return;
    const char *begin = (const char *)((uintptr_t)p & ~(uintptr_t)(CACHE_LINE - 1));
    flush_lines(begin, (const char *)p + bytes);
}
#else
void dpt_cache_evict(const void *p, size_t bytes)
{
    (void)p, (void)bytes;
}
#endif
