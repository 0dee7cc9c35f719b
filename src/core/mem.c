/* Zeroed allocations on huge pages (mem.h). */
#include "mem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)
#define SMALL_PAGE ((size_t)4096)

void *dpt_calloc_large(size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) return NULL;
#ifdef MADV_HUGEPAGE
    if (bytes >= HUGE_PAGE) {
        void *p = NULL;
        size_t padded = (bytes + SMALL_PAGE - 1) & ~(SMALL_PAGE - 1);
        if (posix_memalign(&p, HUGE_PAGE, padded) != 0) return NULL;
        /* advice only: a kernel without THP leaves small pages, no harm */
        (void)madvise(p, bytes & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
        memset(p, 0, bytes); /* the first touch, after the advice, faults in huge pages */
        return p;
    }
#endif
    return calloc(n, size);
}
