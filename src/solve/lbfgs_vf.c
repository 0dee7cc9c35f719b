/* Vector-free L-BFGS (Chen, Wang, Zhou, "Large-scale L-BFGS using
 * MapReduce", NIPS 2014) with the history sharded by rows over the ranks.
 *
 * The direction d = -H g lies in the span of the 2m + 1 basis vectors
 * b = {s_1..s_m, y_1..y_m, g}. The two-loop recursion (N&W algorithm 7.4)
 * only ever needs dot products of vectors in that span, so it can run on
 * the coefficients delta of d = sum_l delta_l b_l with the Gram matrix
 * G = B^T B, B = [S Y g] (n x (2m + 1)):
 *   q . s_j = sum_l delta_l G[j][l],  q <- q - alpha_j y_j is
 *   delta[m + j] -= alpha_j, and so on.
 * Each rank holds its row block of B (the layout is in internal.h); G is one
 * PBLAS p?gemm on the P x 1 BLACS grid, reduced to rank 0 and broadcast; the
 * recursion on delta is O(m^2) and replicated; d's slice is a local gemv
 * (long double sums), and the slices are all-gathered.
 *
 * Every rank computes the same G (the broadcast) and so the same delta; d is
 * the concatenation of the slices, hence identical on every rank. */
#include <stdlib.h>
#include <string.h>

#include "blacs.h"
#include "internal.h"

#ifdef DPT_DOUBLE
void pdgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
             const double *alpha, const double *a, const int *ia, const int *ja, const int *desca,
             const double *b, const int *ib, const int *jb, const int *descb, const double *beta,
             double *c, const int *ic, const int *jc, const int *descc);
#define dpt_pgemm pdgemm_
#else
void psgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
             const float *alpha, const float *a, const int *ia, const int *ja, const int *desca,
             const float *b, const int *ib, const int *jb, const int *descb, const float *beta,
             float *c, const int *ic, const int *jc, const int *descc);
#define dpt_pgemm psgemm_
#endif

typedef struct layout {
    int P, rank, mb, lo, rows, lld;
} layout;

static void get_layout(MPI_Comm comm, size_t n, layout *l)
{
    MPI_Comm_size(comm, &l->P);
    MPI_Comm_rank(comm, &l->rank);
    size_t mb = (n + (size_t)l->P - 1) / (size_t)l->P;
    if (mb == 0) mb = 1;
    size_t lo = (size_t)l->rank * mb, hi = lo + mb;
    if (lo > n) lo = n;
    if (hi > n) hi = n;
    l->mb = (int)mb, l->lo = (int)lo, l->rows = (int)(hi - lo);
    l->lld = l->rows > 0 ? l->rows : 1;
}

size_t dpt_lbfgs_vf_block_len(MPI_Comm comm, size_t n, int m)
{
    layout l;
    get_layout(comm, n, &l);
    return (size_t)(2 * m + 1) * (size_t)l.mb; /* rank 0's block, the largest */
}

dpt_status dpt_lbfgs_vf_create(dpt_lbfgs_vf *vf, MPI_Comm comm, size_t n, int m,
                               dpt_real *storage, size_t storage_len, double *rho_storage)
{
    memset(vf, 0, sizeof *vf);
    vf->ctx = -1;
    if (m < 1 || n < 1 || n > (size_t)0x7fffffff)
        return DPT_FAIL(DPT_ERR_ARG, "lbfgs-vf: need m >= 1 (%d) and 1 <= n <= INT_MAX (%zu)", m, n);
    layout l;
    get_layout(comm, n, &l);
    size_t len = (size_t)(2 * m + 1) * (size_t)l.lld;
    if (storage) {
        if (storage_len < len || !rho_storage)
            return DPT_FAIL(DPT_ERR_ARG, "lbfgs-vf: storage of %zu reals, need %zu", storage_len, len);
        vf->b = storage, vf->rho = rho_storage;
    } else {
        vf->b = malloc(sizeof(dpt_real) * len);
        vf->rho = malloc(sizeof(double) * (size_t)m);
        vf->own_storage = 1;
        if (!vf->b || !vf->rho) {
            free(vf->b), free(vf->rho);
            vf->b = NULL, vf->rho = NULL;
            return DPT_FAIL(DPT_ERR_NOMEM, "lbfgs-vf: out of memory for %zu reals", len);
        }
    }
    memset(vf->b, 0, sizeof(dpt_real) * len);
    memset(vf->rho, 0, sizeof(double) * (size_t)m);
    vf->comm = comm;
    vf->P = l.P, vf->rank = l.rank;
    vf->n = (int)n, vf->m = m;
    vf->mb = l.mb, vf->lo = l.lo, vf->rows = l.rows, vf->lld = l.lld;
    return DPT_OK;
}

dpt_status dpt_lbfgs_vf_grid_open(dpt_lbfgs_vf *vf)
{
    if (vf->ctx >= 0) return DPT_OK;
    int handle = Csys2blacs_handle(vf->comm), ctx = handle;
    Cblacs_gridinit(&ctx, "R", vf->P, 1); /* makes its own communicators */
    Cfree_blacs_system_handle(handle);
    int nprow = 0, npcol = 0, myrow = -1, mycol = -1;
    if (ctx >= 0) Cblacs_gridinfo(ctx, &nprow, &npcol, &myrow, &mycol);
    if (ctx < 0 || nprow != vf->P || npcol != 1 || myrow != vf->rank)
        return DPT_FAIL(DPT_ERR_MPI, "lbfgs-vf: BLACS grid %d x 1 not set up (got %d x %d, row %d, rank %d)",
                        vf->P, nprow, npcol, myrow, vf->rank);
    vf->ctx = ctx;
    return DPT_OK;
}

void dpt_lbfgs_vf_grid_close(dpt_lbfgs_vf *vf)
{
    if (vf->ctx < 0) return;
    Cblacs_gridexit(vf->ctx);
    vf->ctx = -1;
}

void dpt_lbfgs_vf_destroy(dpt_lbfgs_vf *vf)
{
    dpt_lbfgs_vf_grid_close(vf);
    if (vf->own_storage) free(vf->b), free(vf->rho);
    memset(vf, 0, sizeof *vf);
    vf->ctx = -1;
}

void dpt_lbfgs_vf_reset(dpt_lbfgs_vf *vf) { vf->count = 0, vf->head = 0; }

void dpt_lbfgs_vf_push(dpt_lbfgs_vf *vf, const dpt_real *s, const dpt_real *y, double rho)
{
    const size_t lld = (size_t)vf->lld, j = (size_t)vf->head;
    if (vf->rows > 0) {
        memcpy(vf->b + j * lld, s + vf->lo, sizeof(dpt_real) * (size_t)vf->rows);
        memcpy(vf->b + ((size_t)vf->m + j) * lld, y + vf->lo, sizeof(dpt_real) * (size_t)vf->rows);
    }
    vf->rho[j] = rho;
    vf->head = (vf->head + 1) % vf->m;
    if (vf->count < vf->m) vf->count++;
}

size_t dpt_lbfgs_vf_history_bytes(const dpt_lbfgs_vf *vf)
{
    return (size_t)vf->rows * 2 * (size_t)vf->m * sizeof(dpt_real);
}

/* slot of the k-th newest pair, k = 0 the newest */
static int vf_slot(const dpt_lbfgs_vf *vf, int k) { return (vf->head - 1 - k + 2 * vf->m) % vf->m; }

/* The two-loop recursion on the coefficients (Chen et al., algorithm 3):
 * G[K][K] the Gram matrix (column-major, symmetric), delta[K] out, a[m]
 * work. Slot j: s is basis vector j, y is m + j; g is 2m. The dot products
 * q . s_j = sum_l delta_l G[j][l] cancel (q is much shorter than the terms
 * near convergence), so they accumulate in long double: the O(m^2) cost is
 * nothing, and the direction stays close to the serial two-loop one (the
 * solver test compares P-rank iterates with 1-rank iterates). */
static void two_loop_coeffs(const dpt_lbfgs_vf *vf, const double *G, double *delta, double *a)
{
    const int m = vf->m, K = 2 * m + 1;
    for (int l = 0; l < K; l++) delta[l] = 0;
    delta[2 * m] = 1; /* q <- g */
    for (int k = 0; k < vf->count; k++) { /* newest to oldest */
        int j = vf_slot(vf, k);
        long double sq = 0;
        for (int l = 0; l < K; l++) sq += (long double)delta[l] * G[j + (size_t)K * l];
        a[j] = (double)(vf->rho[j] * sq);
        delta[m + j] -= a[j]; /* q <- q - alpha_j y_j */
    }
    if (vf->count > 0) { /* r <- H0 q, gamma = s.y / y.y of the newest pair */
        int j = vf_slot(vf, 0);
        double gamma = 1.0 / (vf->rho[j] * G[(m + j) + (size_t)K * (m + j)]);
        for (int l = 0; l < K; l++) delta[l] *= gamma;
    }
    for (int k = vf->count - 1; k >= 0; k--) { /* oldest to newest */
        int j = vf_slot(vf, k);
        long double yr = 0;
        for (int l = 0; l < K; l++) yr += (long double)delta[l] * G[(m + j) + (size_t)K * l];
        double beta = (double)(vf->rho[j] * yr);
        delta[j] += a[j] - beta; /* r <- r + s_j (alpha_j - beta) */
    }
}

dpt_status dpt_lbfgs_vf_direction(dpt_lbfgs_vf *vf, const dpt_real *g, dpt_real *d)
{
    const int m = vf->m, K = 2 * m + 1, P = vf->P;
    const size_t lld = (size_t)vf->lld;
    int opened = 0;
    dpt_status st = DPT_OK;
    if (vf->ctx < 0) {
        st = dpt_lbfgs_vf_grid_open(vf);
        if (st != DPT_OK) return st;
        opened = 1;
    }
    const int root_rows = numroc_(&K, &K, &vf->rank, &(int){0}, &P);
    const int lldc = root_rows > 0 ? root_rows : 1;
    dpt_real *c = malloc(sizeof(dpt_real) * (size_t)K * (size_t)K);
    double *G = malloc(sizeof(double) * ((size_t)K * (size_t)K + 2 * (size_t)K));
    int *counts = malloc(sizeof(int) * 2 * (size_t)P);
    int failed = !c || !G || !counts, any_failed = 1; /* every rank leaves, or none: p?gemm is collective */
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, vf->comm);
    if (any_failed) {
        st = failed ? DPT_FAIL(DPT_ERR_NOMEM, "lbfgs-vf: out of memory for the %d x %d Gram matrix", K, K)
                    : DPT_FAIL(DPT_ERR_REMOTE, "lbfgs-vf: another rank ran out of memory");
        goto done;
    }
    int *displs = counts + P;
    double *delta = G + (size_t)K * K, *a = delta + K;

    /* the gradient's slice is the last basis column */
    if (vf->rows > 0) memcpy(vf->b + 2 * (size_t)m * lld, g + vf->lo, sizeof(dpt_real) * (size_t)vf->rows);

    /* G = B^T B: one p?gemm, the K x K result in one block on grid row 0 */
    int descb[9], descc[9], info = 0, info2 = 0;
    const int zero_i = 0, one_i = 1, lldb = vf->lld;
    descinit_(descb, &vf->n, &K, &vf->mb, &K, &zero_i, &zero_i, &vf->ctx, &lldb, &info);
    descinit_(descc, &K, &K, &K, &K, &zero_i, &zero_i, &vf->ctx, &lldc, &info2);
    if (info != 0 || info2 != 0) {
        st = DPT_FAIL(DPT_ERR_ARG, "lbfgs-vf: descinit failed (info %d, %d)", info, info2);
        goto done; /* the same on every rank: the descriptors depend only on n, m, P */
    }
    const dpt_real one = 1, zero = 0;
    dpt_pgemm("T", "N", &K, &K, &vf->n, &one, vf->b, &one_i, &one_i, descb, vf->b, &one_i, &one_i,
              descb, &zero, c, &one_i, &one_i, descc);
    if (MPI_Bcast(c, K * K, DPT_MPI_REAL, 0, vf->comm) != MPI_SUCCESS) {
        st = DPT_FAIL(DPT_ERR_MPI, "lbfgs-vf: broadcast of the Gram matrix failed");
        goto done;
    }
    for (size_t i = 0; i < (size_t)K * K; i++) G[i] = (double)c[i];

    two_loop_coeffs(vf, G, delta, a);

    /* this rank's slice of d = -B delta (a gemv, written out to accumulate
     * in long double: the sum cancels), then every slice to every rank */
    for (int i = 0; i < vf->rows; i++) {
        long double acc = 0;
        for (int l = 0; l < K; l++) acc += (long double)delta[l] * vf->b[i + lld * l];
        d[vf->lo + i] = (dpt_real)-acc;
    }
    for (int r = 0; r < P; r++) {
        long lo = (long)r * vf->mb, hi = lo + vf->mb;
        if (lo > vf->n) lo = vf->n;
        if (hi > vf->n) hi = vf->n;
        displs[r] = (int)lo, counts[r] = (int)(hi - lo);
    }
    if (MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, d, counts, displs, DPT_MPI_REAL,
                       vf->comm) != MPI_SUCCESS)
        st = DPT_FAIL(DPT_ERR_MPI, "lbfgs-vf: all-gather of the direction failed");
done:
    free(c), free(G), free(counts);
    if (opened) dpt_lbfgs_vf_grid_close(vf);
    return st;
}
