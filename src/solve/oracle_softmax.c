/* The oracle's fast path for softmax regression (see oracle_softmax.h).
 *
 * Bytes per call, one rank of P, n samples of d features, K classes,
 * features stored as bytes (Fashion-MNIST: n = 60000, d = 784, K = 10):
 *   general path  gather: read n d / P bytes, write n d / P reals; forward
 *                 GEMM: read them; backward GEMM: read them again (blocks of
 *                 256 samples, 1.6 MB in double: larger than L2) - about
 *                 3 x 8 + 1 = 25 bytes per feature value through the caches;
 *   this path     read n d / P bytes from memory once; the converted block
 *                 (SOFTMAX_BLOCK x d reals, 400 KB in double) is written and
 *                 read by both GEMMs inside L2; the probabilities (n K / P
 *                 reals) are written by value calls after the first
 *                 curvature product and read by every product.
 * The work is two GEMMs of n d K multiply-adds per call in either path. */
#include "oracle_softmax.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Rows per converted block: 64 x 784 reals (400 KB in double) stay in a
 * 1 MB L2 cache, and OpenBLAS (0.3.21, AVX-512) runs GEMMs of this size
 * (M N K below 100^3) in its small-matrix kernels without packing: on this
 * machine 46-52 GFLOP/s per core for 32-64 rows against 21-33 GFLOP/s for
 * 128 and more. */
#define SOFTMAX_BLOCK 64
#define SOFTMAX_MAX_THREADS 16

typedef enum job_kind { JOB_VALUE_GRAD, JOB_PROBS, JOB_CURVATURE } job_kind;

typedef struct worker {
    struct dpt_softmax_oracle *so;
    int id;
    pthread_t thread;
    dpt_real *x;   /* [SOFTMAX_BLOCK][d] converted features */
    dpt_real *z;   /* [SOFTMAX_BLOCK][K] logits, then dloss/dlogits or D(p) u */
    dpt_real *acc; /* [n_params] this thread's sums (thread 0: the caller's output) */
    double loss;
} worker;

struct dpt_softmax_oracle {
    const dpt_dataset *set;
    size_t lo, count, curv_count; /* the rank's rows of the set, and its curvature rows */
    int d, K;
    size_t n_params, w_off;       /* the layer's weights at w_off, biases after them */
    double weight;                /* the head's loss weight */
    dpt_real scale;               /* 1/255 for byte features (applied as the GEMMs' alpha) */
    /* the probabilities of the last point evaluated, once products are asked for */
    dpt_real *probs;              /* [count][K] */
    dpt_real *probs_theta;        /* [n_params] the point they belong to */
    int probs_valid, keep_probs;
    /* the job of the current call */
    job_kind kind;
    const dpt_real *theta, *v;
    /* threads: worker 0 is the caller */
    int n_threads;
    worker workers[SOFTMAX_MAX_THREADS];
    pthread_mutex_t mutex;
    pthread_cond_t go, done;
    unsigned long generation;
    int pending, quit, started;
};

/* ---------------------------------------------------------------- one block */

/* Rows [row, row + nb) of the rank's share into w->x as reals (bytes as
 * their integer values: the 1/255 is the GEMMs' alpha). */
static void load_block(const dpt_softmax_oracle *so, dpt_real *restrict x, size_t row, size_t nb)
{
    const size_t first = (so->lo + row) * (size_t)so->d, len = nb * (size_t)so->d;
    switch (so->set->feature_type) {
    case DPT_FEATURES_U8: {
        const uint8_t *restrict src = (const uint8_t *)so->set->features + first;
        for (size_t i = 0; i < len; i++) x[i] = (dpt_real)src[i];
        break;
    }
    case DPT_FEATURES_F32: {
        const float *restrict src = (const float *)so->set->features + first;
        for (size_t i = 0; i < len; i++) x[i] = (dpt_real)src[i];
        break;
    }
    case DPT_FEATURES_F64: {
        const double *restrict src = (const double *)so->set->features + first;
        for (size_t i = 0; i < len; i++) x[i] = (dpt_real)src[i];
        break;
    }
    }
}

/* z[nb][K] = scale x w^T (+ b when b != NULL) */
static void forward(const dpt_softmax_oracle *so, const worker *w, const dpt_real *weights,
                    const dpt_real *b, int nb)
{
    const int d = so->d, K = so->K;
    dpt_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, K, d, so->scale, w->x, d, weights, d, 0,
             w->z, K);
    if (!b) return;
    for (int r = 0; r < nb; r++)
        for (int k = 0; k < K; k++) w->z[(size_t)r * K + k] += b[k];
}

/* acc_W += scale z^T x, acc_b += column sums of z */
static void backward(const dpt_softmax_oracle *so, worker *w, int nb)
{
    const int d = so->d, K = so->K;
    dpt_real *gw = w->acc + so->w_off, *gb = gw + (size_t)K * d;
    dpt_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, d, nb, so->scale, w->z, K, w->x, d, 1, gw, d);
    for (int r = 0; r < nb; r++)
        for (int k = 0; k < K; k++) gb[k] += w->z[(size_t)r * K + k];
}

/* Softmax of each logit row in place; returns the rows' summed loss
 * -log p_y (computed as the general path does: log-sum-exp after the
 * maximum). With grad, z becomes weight (p - onehot(y)); with probs, p is
 * also stored there. */
static double softmax_rows(const dpt_softmax_oracle *so, dpt_real *z, size_t row, int nb, int grad,
                           dpt_real *probs)
{
    const int K = so->K;
    const uint8_t *labels = so->set->labels + so->lo + row;
    const dpt_real weight = (dpt_real)so->weight;
    double loss = 0;
    for (int r = 0; r < nb; r++) {
        dpt_real *zr = z + (size_t)r * K;
        dpt_real zmax = zr[0];
        for (int k = 1; k < K; k++) zmax = zr[k] > zmax ? zr[k] : zmax;
        double e[K], sum = 0;
        for (int k = 0; k < K; k++) sum += e[k] = exp((double)(zr[k] - zmax));
        const int y = labels[r];
        loss += log(sum) - (double)(zr[y] - zmax);
        const double inv = 1 / sum;
        for (int k = 0; k < K; k++) zr[k] = (dpt_real)(e[k] * inv);
        if (probs) memcpy(probs + (size_t)r * K, zr, sizeof(dpt_real) * (size_t)K);
        if (grad) {
            zr[y] -= 1;
            for (int k = 0; k < K; k++) zr[k] *= weight;
        }
    }
    return loss;
}

/* z <- weight D(p) (z + v_b): the loss Hessian of each row applied to its
 * R{logits} */
static void hessian_rows(const dpt_softmax_oracle *so, dpt_real *z, const dpt_real *probs,
                         const dpt_real *vb, int nb)
{
    const int K = so->K;
    const double weight = so->weight;
    for (int r = 0; r < nb; r++) {
        dpt_real *zr = z + (size_t)r * K;
        const dpt_real *p = probs + (size_t)r * K;
        double dot = 0;
        for (int k = 0; k < K; k++) {
            zr[k] += vb[k];
            dot += (double)p[k] * zr[k];
        }
        for (int k = 0; k < K; k++) zr[k] = (dpt_real)(weight * p[k] * (zr[k] - dot));
    }
}

/* ---------------------------------------------------------------- a thread's share */

static void run_share(dpt_softmax_oracle *so, worker *w)
{
    const int K = so->K;
    const size_t rows = so->kind == JOB_VALUE_GRAD ? so->count : so->curv_count;
    const size_t a = rows * (size_t)w->id / (size_t)so->n_threads;
    const size_t b = rows * (size_t)(w->id + 1) / (size_t)so->n_threads;
    const dpt_real *weights = so->theta + so->w_off, *bias = weights + (size_t)K * so->d;
    w->loss = 0;
    if (so->kind != JOB_PROBS) memset(w->acc, 0, sizeof(dpt_real) * so->n_params);
    for (size_t row = a; row < b; row += SOFTMAX_BLOCK) {
        const int nb = (int)(b - row < SOFTMAX_BLOCK ? b - row : SOFTMAX_BLOCK);
        load_block(so, w->x, row, (size_t)nb);
        dpt_real *probs = so->probs ? so->probs + row * (size_t)K : NULL;
        switch (so->kind) {
        case JOB_VALUE_GRAD:
            forward(so, w, weights, bias, nb);
            w->loss += softmax_rows(so, w->z, row, nb, 1, so->keep_probs ? probs : NULL);
            backward(so, w, nb);
            break;
        case JOB_PROBS:
            forward(so, w, weights, bias, nb);
            softmax_rows(so, w->z, row, nb, 0, probs);
            break;
        case JOB_CURVATURE: {
            const dpt_real *vw = so->v + so->w_off;
            forward(so, w, vw, NULL, nb);
            hessian_rows(so, w->z, probs, vw + (size_t)K * so->d, nb);
            backward(so, w, nb);
            break;
        }
        }
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    dpt_softmax_oracle *so = w->so;
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&so->mutex);
        while (so->generation == seen && !so->quit) pthread_cond_wait(&so->go, &so->mutex);
        int quit = so->quit;
        seen = so->generation;
        pthread_mutex_unlock(&so->mutex);
        if (quit) return NULL;
        run_share(so, w);
        pthread_mutex_lock(&so->mutex);
        if (--so->pending == 0) pthread_cond_signal(&so->done);
        pthread_mutex_unlock(&so->mutex);
    }
}

/* Runs the job on every thread; thread 0's sums land in out (may be NULL
 * for JOB_PROBS), the others' are added to them; returns the summed loss. */
static double run_job(dpt_softmax_oracle *so, job_kind kind, const dpt_real *theta, const dpt_real *v,
                      dpt_real *out)
{
    so->kind = kind;
    so->theta = theta;
    so->v = v;
    so->workers[0].acc = out;
    if (so->n_threads > 1) {
        pthread_mutex_lock(&so->mutex);
        so->pending = so->n_threads - 1;
        so->generation++;
        pthread_cond_broadcast(&so->go);
        pthread_mutex_unlock(&so->mutex);
    }
    run_share(so, &so->workers[0]);
    if (so->n_threads > 1) {
        pthread_mutex_lock(&so->mutex);
        while (so->pending > 0) pthread_cond_wait(&so->done, &so->mutex);
        pthread_mutex_unlock(&so->mutex);
    }
    double loss = so->workers[0].loss;
    for (int t = 1; t < so->n_threads; t++) {
        loss += so->workers[t].loss;
        if (kind == JOB_PROBS) continue;
        const dpt_real *acc = so->workers[t].acc;
        for (size_t i = 0; i < so->n_params; i++) out[i] += acc[i];
    }
    return loss;
}

/* ---------------------------------------------------------------- public */

/* The one dense layer of a model that is just that layer under softmax
 * cross-entropy with unmapped labels, or NULL. */
static const dpt_layer *softmax_layer(const dpt_model *m, const dpt_dataset *set)
{
    if (m->n_layers != 1 || m->n_heads != 1) return NULL;
    const dpt_head *head = &m->heads[0];
    const dpt_layer *l = &m->layers[0];
    if (head->spec.loss != DPT_LOSS_SOFTMAX_XENT || head->spec.has_map || l->spec.kind != DPT_LAYER_DENSE)
        return NULL;
    if (dpt_shape_size(l->in) != set->n_features || head->outputs != l->spec.units ||
        m->n_params != l->n_weights + l->n_bias || set->n_features > (size_t)INT_MAX)
        return NULL;
    return l;
}

static int env_general(void)
{
    const char *e = getenv("DPT_ORACLE_GENERAL");
    return e && e[0] != '\0' && strcmp(e, "0") != 0;
}

static int blas_threads(void)
{
    int t = openblas_get_num_threads();
    return t < 1 ? 1 : t > SOFTMAX_MAX_THREADS ? SOFTMAX_MAX_THREADS : t;
}

dpt_status dpt_softmax_oracle_create(dpt_softmax_oracle **out, const dpt_oracle *o)
{
    *out = NULL;
    const dpt_model *m = o->model;
    const dpt_layer *l = softmax_layer(m, o->set);
    if (!l || env_general()) return DPT_OK;
    dpt_softmax_oracle *so = calloc(1, sizeof *so);
    if (!so) return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for the softmax oracle");
    so->set = o->set;
    so->lo = o->lo, so->count = o->count, so->curv_count = o->curv_count;
    so->d = (int)o->set->n_features;
    so->K = l->spec.units;
    so->n_params = m->n_params;
    so->w_off = l->param_offset;
    so->weight = m->heads[0].spec.weight;
    so->scale = (dpt_real)(o->set->feature_type == DPT_FEATURES_U8 ? 1.0 / 255.0 : 1.0);
    /* a thread for every SOFTMAX_BLOCK rows at most */
    so->n_threads = blas_threads();
    while (so->n_threads > 1 && o->count < (size_t)so->n_threads * SOFTMAX_BLOCK) so->n_threads--;
    const size_t K = (size_t)so->K, d = (size_t)so->d;
    int ok = 1;
    for (int t = 0; t < so->n_threads; t++) {
        worker *w = &so->workers[t];
        w->so = so;
        w->id = t;
        w->x = malloc(sizeof(dpt_real) * SOFTMAX_BLOCK * d);
        w->z = malloc(sizeof(dpt_real) * SOFTMAX_BLOCK * K);
        if (t > 0) w->acc = malloc(sizeof(dpt_real) * so->n_params);
        ok &= w->x && w->z && (t == 0 || w->acc);
    }
    so->probs = malloc(sizeof(dpt_real) * (o->count * K + 1));
    so->probs_theta = malloc(sizeof(dpt_real) * so->n_params);
    ok &= so->probs && so->probs_theta;
    if (ok && so->n_threads > 1) {
        pthread_mutex_init(&so->mutex, NULL);
        pthread_cond_init(&so->go, NULL);
        pthread_cond_init(&so->done, NULL);
        so->started = 1;
        for (int t = 1; t < so->n_threads && ok; t++) {
            if (pthread_create(&so->workers[t].thread, NULL, worker_main, &so->workers[t]) != 0) {
                so->n_threads = t; /* run with the threads that started */
                break;
            }
        }
    }
    if (!ok) {
        dpt_softmax_oracle_destroy(so);
        return DPT_FAIL(DPT_ERR_NOMEM, "out of memory for the softmax oracle's buffers");
    }
    *out = so;
    return DPT_OK;
}

void dpt_softmax_oracle_destroy(dpt_softmax_oracle *so)
{
    if (!so) return;
    if (so->started) {
        pthread_mutex_lock(&so->mutex);
        so->quit = 1;
        pthread_cond_broadcast(&so->go);
        pthread_mutex_unlock(&so->mutex);
        for (int t = 1; t < so->n_threads; t++) pthread_join(so->workers[t].thread, NULL);
        pthread_mutex_destroy(&so->mutex);
        pthread_cond_destroy(&so->go);
        pthread_cond_destroy(&so->done);
    }
    for (int t = 0; t < SOFTMAX_MAX_THREADS; t++) {
        free(so->workers[t].x), free(so->workers[t].z);
        if (t > 0) free(so->workers[t].acc);
    }
    free(so->probs), free(so->probs_theta);
    free(so);
}

void dpt_softmax_oracle_value_grad(dpt_softmax_oracle *so, const dpt_real *theta, double *loss,
                                   dpt_real *grad)
{
    /* keep the probabilities for the products that follow, once there are products */
    if (so->keep_probs) memcpy(so->probs_theta, theta, sizeof(dpt_real) * so->n_params);
    *loss = so->weight * run_job(so, JOB_VALUE_GRAD, theta, NULL, grad);
    so->probs_valid = so->keep_probs;
}

void dpt_softmax_oracle_curvature(dpt_softmax_oracle *so, const dpt_real *theta, const dpt_real *v,
                                  dpt_real *out)
{
    so->keep_probs = 1;
    if (!so->probs_valid || memcmp(so->probs_theta, theta, sizeof(dpt_real) * so->n_params) != 0) {
        memcpy(so->probs_theta, theta, sizeof(dpt_real) * so->n_params);
        run_job(so, JOB_PROBS, theta, NULL, NULL);
        so->probs_valid = 1;
    }
    run_job(so, JOB_CURVATURE, theta, v, out);
}
