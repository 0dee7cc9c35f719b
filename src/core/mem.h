/* Internal: allocations for the large, long-lived arrays of the step
 * (parameters, gradients, activations, optimizer state, the data sets),
 * backed by transparent huge pages where the kernel offers them. */
#ifndef DPT_CORE_MEM_H
#define DPT_CORE_MEM_H

#include <stddef.h>

/* Like calloc(n, size), freed with free(). From 2 MiB on, the block is
 * aligned to 2 MiB and its whole 2 MiB stretches are advised for huge
 * pages (madvise MADV_HUGEPAGE; Linux's default THP mode "madvise" gives
 * them only on request). One 2 MiB page instead of 512 small ones: fewer
 * TLB misses in the passes over the parameter vector, and far less work
 * for the kernel when MPI copies the gradient between processes (Open
 * MPI's single-copy transfer pins every page it reads: 0.26 -> 0.18 ms for
 * a 2 MiB allreduce between two ranks on the test machine). The tail past
 * the last whole stretch keeps small pages, so the resident size does not
 * grow. */
void *dpt_calloc_large(size_t n, size_t size);
/* The same as malloc(bytes): not zeroed, for a block its owner fills at
 * once (a data set as it is loaded; the first touch, after the advice,
 * faults in huge pages). For blocks read at random rows, as a training
 * set is by the batch gather: with small pages every row is a TLB miss,
 * and under a hypervisor each page walk is a two-level one. */
void *dpt_malloc_large(size_t bytes);
/* Huge pages for the whole 2 MiB stretches of a block already filled
 * (MADV_HUGEPAGE, then MADV_COLLAPSE: Linux 6.1 or later moves the
 * contents at once; older kernels refuse, and the block keeps its pages). */
void dpt_advise_huge(void *p, size_t bytes);

/* Writes [p, p + bytes) back if dirty and drops it from every cache of the
 * machine (CLFLUSHOPT; nothing where the CPU lacks it). For memory another
 * process has just read out of this one's shared window: that read leaves
 * copies of the lines in this core's caches, and the owner's next write
 * to each line must then take it back from here; on a CPU whose cores sit
 * in several L3 domains (AMD EPYC core complexes) those invalidations are
 * served one cross-domain round trip at a time. On the test VM, writing
 * 1 MiB that the other vCPU had read took 0.42-0.44 ms across two L3s and
 * 0.03 ms after the reader had evicted it (0.04 ms in one L3). Ends with a
 * store fence: the lines are gone before any later synchronization. */
void dpt_cache_evict(const void *p, size_t bytes);

#endif /* DPT_CORE_MEM_H */
