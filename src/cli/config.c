/* config.c - the run configuration: a schema table, parsing with libinih,
 * validation with one precise message per error, and writing it back.
 *
 * Everything a key needs (section, type, range, allowed values, default,
 * help, where it lives in dpt_config) is in one table, so that parsing,
 * defaults, --help and dpt_config_write cannot drift apart. The defaults are
 * applied by parsing the table's default text through the same code as user
 * input, so they are validated too.
 *
 * [head.NAME] sections are instances of one template section "head" of the
 * table: their keys live in dpt_head_spec, and a key is addressed by its
 * table entry and a slot (0: the fixed sections; h + 1: head h). Heads are
 * numbered in the order their section first appears in the file; --set can
 * change a head the file defines but not add one (a typo in a head name
 * would otherwise silently add a head).
 *
 * libinih reports neither line numbers to the handler (Debian builds it with
 * INI_HANDLER_LINENO 0) nor empty sections, so the text is fed to
 * ini_parse_stream() by our own line reader, which counts lines, checks
 * section headers (declaring heads) and rejects lines that do not fit
 * inih's buffer. With DPT_INIH_RUNTIME_OPTIONS (Debian's libinih exports its
 * settings) that buffer is a 4096-byte heap line, else inih's 200 bytes.
 */
#include "dpt/config.h"
#include "dpt/data.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

/* inih's line buffer: a line may hold this less the newline and the NUL. */
#ifdef DPT_INIH_RUNTIME_OPTIONS
#define INI_LINE_BUF 4096
#else
#define INI_LINE_BUF INI_MAX_LINE
#endif
/* The longest line dpt_config_write may produce (our reader refuses longer). */
#define WRITE_LINE_MAX ((size_t)INI_LINE_BUF - 2)
/* Room for any value dpt_config_write formats (a layer list before it is
 * compacted is a little longer than the line it ends up on). */
#define VALUE_BUF (2 * DPT_PATH_MAX + INI_LINE_BUF)

/* ---------------------------------------------------------------- schema */

typedef enum value_type {
    T_STRING, /* char[DPT_PATH_MAX] */
    T_INT,    /* int */
    T_LONG,   /* long */
    T_U64,    /* uint64_t */
    T_BOOL,   /* int, 0 or 1 */
    T_REAL,   /* double */
    T_ENUM,   /* an int-sized enum; value = index in `names` (or name_at) */
    T_LAYERS, /* dpt_layer_spec[DPT_MAX_LAYERS] at offset, int count at aux_offset */
    T_LABELS  /* head labels: int has_map at offset, int16_t map[] at aux_offset */
} value_type;

/* Flags of a key. */
enum {
    F_REQUIRED = 1,     /* no default: the user must give it */
    F_EMPTY_OK = 2,     /* string, layers: "" is allowed */
    F_MIN_OPEN = 4,     /* real: min itself is not allowed */
    F_MAX_OPEN = 8,     /* real: max itself is not allowed */
    F_NO_MAX = 16,      /* number: no upper bound (besides the type's) */
    F_DEFAULT_LR100 = 32, /* lr_final: defaults to lr / 100, resolved at the end */
    F_NOT_PATH = 64       /* string: a word, not a file name (for --help) */
};

typedef struct key_spec {
    const char *section; /* "head" for the keys of every [head.NAME] */
    const char *key;
    value_type type;
    int flags;
    const char *def;     /* default (or, for a required key, an example) as INI text */
    long lmin, lmax;     /* T_INT, T_LONG */
    double rmin, rmax;   /* T_REAL */
    const char *const *names;     /* T_ENUM: allowed values, NULL-terminated */
    const char *(*name_at)(int);  /* T_ENUM without names: value i's name, NULL past the end */
    const char *aliases; /* names people use for this key (space-separated);
                            only to suggest the right key, never accepted */
    const char *help;
    size_t offset;       /* of the field in dpt_config, or in dpt_head_spec for "head" */
    size_t aux_offset;   /* T_LAYERS, T_LABELS: the second field (see value_type) */
} key_spec;

/* Enum names, indexed by the enum value: the designated initializers keep
 * them right if the enums are ever reordered. */
static const char *const loss_names[] = {
    [DPT_LOSS_SOFTMAX_XENT] = "softmax_cross_entropy", [DPT_LOSS_MSE] = "mse",
    [DPT_LOSS_SIGMOID_BCE] = "sigmoid_bce", [DPT_LOSS_SIGMOID_BCE + 1] = NULL};
/* Optimizers and schedules are named by the optim module. */
static const char *method_name_at(int i)
{
    return i >= 0 && i < DPT_OPTIM_COUNT_ ? dpt_optim_method_name((dpt_optim_method)i) : NULL;
}

static const char *schedule_name_at(int i)
{
    return i >= 0 && i < DPT_SCHED_COUNT_ ? dpt_schedule_name((dpt_schedule_kind)i) : NULL;
}

static const char *const format_names[] = {
    [DPT_FORMAT_AUTO] = "auto", [DPT_FORMAT_IDX] = "idx", [DPT_FORMAT_NPY] = "npy",
    [DPT_FORMAT_CSV] = "csv", [DPT_FORMAT_CSV + 1] = NULL};
static const char *const csv_header_names[] = {
    [DPT_CSV_HEADER_AUTO] = "auto", [DPT_CSV_HEADER_YES] = "true", [DPT_CSV_HEADER_NO] = "false",
    [DPT_CSV_HEADER_NO + 1] = NULL};
static const char *const scaling_names[] = {"none", "linear", NULL};
static const char *const nonfinite_names[] = {"skip", "abort", NULL};
/* false, true, auto: the values of overlap and shard_state (DPT_OVERLAP_*, DPT_SHARD_*) */
static const char *const tristate_names[] = {"false", "true", "auto", NULL};
static const char *const curvature_names[] = {"hessian", "gauss_newton", NULL};
static const char *const newton_solver_names[] = {"cholesky", "cg", "pcg", NULL};
static const char *const progress_names[] = {
    [DPT_PROGRESS_AUTO] = "auto", [DPT_PROGRESS_BAR] = "bar",
    [DPT_PROGRESS_LINES] = "lines", [DPT_PROGRESS_NONE] = "none",
    [DPT_PROGRESS_NONE + 1] = NULL};
/* Booleans: even index true, odd index false. */
static const char *const bool_names[] = {"true", "false", "yes", "no", "on", "off",
                                         "1", "0", NULL};

/* Initializations are named by the nn module (dpt_init_name). */
static const char *init_name_at(int i)
{
    return i >= 0 && i < DPT_INIT_COUNT_ ? dpt_init_name((dpt_init_kind)i) : NULL;
}

/* Enum fields are written through memcpy of an int; that needs int-sized enums. */
_Static_assert(sizeof(dpt_loss_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(dpt_init_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(dpt_optim_method) == sizeof(int), "enum size");
_Static_assert(sizeof(dpt_schedule_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(dpt_progress_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(dpt_curvature_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(((dpt_config *)0)->data.format) == sizeof(int), "enum size");

#define LAYERS_EXAMPLE "512 relu, 256 relu, 10"
#define OFF(field) offsetof(dpt_config, field)
#define HOFF(field) offsetof(dpt_head_spec, field)

static const key_spec keys[] = {
    {.section = "data", .key = "dir", .type = T_STRING,
     .def = "/usr/share/datasets/fashion-mnist", .aliases = "data_dir path root",
     .help = "directory that relative file names below are taken from", .offset = OFF(data.dir)},
    {.section = "data", .key = "train_images", .type = T_STRING,
     .def = "train-images-idx3-ubyte.gz", .aliases = "train train_data train_features",
     .help = "training features: IDX (.gz allowed), NumPy .npy (float32, float64, or uint8 "
             "scaled to [0, 1]) or CSV (.csv, .csv.gz; one sample per line, its label in "
             "label_column)", .offset = OFF(data.train_images)},
    {.section = "data", .key = "train_labels", .type = T_STRING, .flags = F_EMPTY_OK,
     .def = "train-labels-idx1-ubyte.gz",
     .help = "training labels: IDX or .npy (integers 0..255); empty for a CSV file with a label "
             "column (beside one, the default IDX name counts as empty)",
     .offset = OFF(data.train_labels)},
    {.section = "data", .key = "test_images", .type = T_STRING,
     .def = "t10k-images-idx3-ubyte.gz", .aliases = "test test_data test_features",
     .help = "test features: IDX, .npy or CSV, as train_images", .offset = OFF(data.test_images)},
    {.section = "data", .key = "test_labels", .type = T_STRING, .flags = F_EMPTY_OK,
     .def = "t10k-labels-idx1-ubyte.gz",
     .help = "test labels, as train_labels", .offset = OFF(data.test_labels)},
    {.section = "data", .key = "format", .type = T_ENUM, .def = "auto", .names = format_names,
     .aliases = "file_format data_format type",
     .help = "format of the *_images files (auto: by name, .npy, .csv or .csv.gz, else IDX); "
             "a labels file is known by its name unless this is idx or npy",
     .offset = OFF(data.format)},
    {.section = "data", .key = "label_column", .type = T_STRING, .flags = F_NOT_PATH, .def = "0",
     .aliases = "label_col target target_column label labels_column y",
     .help = "CSV: the label column, an index from 0 (negative from the end: -1 is the last), "
             "a header name, or none (every column a feature; labels from *_labels)",
     .offset = OFF(data.label_column)},
    {.section = "data", .key = "csv_header", .type = T_ENUM, .def = "auto",
     .names = csv_header_names, .aliases = "header has_header",
     .help = "CSV: the first row names the columns (auto: when one of its cells is not a number)",
     .offset = OFF(data.csv_header)},

    {.section = "model", .key = "layers", .type = T_LAYERS, .flags = F_REQUIRED,
     .def = LAYERS_EXAMPLE, .aliases = "layer hidden hidden_layers architecture trunk",
     .help = "the shared trunk's layers in order (without [head.NAME] sections the last one "
             "is the output)",
     .offset = OFF(model.spec.trunk), .aux_offset = OFF(model.spec.n_trunk)},
    {.section = "model", .key = "loss", .type = T_ENUM, .def = "softmax_cross_entropy",
     .names = loss_names, .aliases = "loss_function criterion",
     .help = "loss on the last layer's output (when there are no [head.NAME] sections)",
     .offset = OFF(model.spec.loss)},
    {.section = "model", .key = "init", .type = T_ENUM, .def = "auto", .name_at = init_name_at,
     .aliases = "initialization initializer weight_init",
     .help = "weight initialization of layers without init= (auto: He before relu, Glorot "
             "otherwise)",
     .offset = OFF(model.spec.init)},
    {.section = "model", .key = "bn_sync", .type = T_BOOL, .def = "true",
     .aliases = "sync_bn syncbn batchnorm_sync sync",
     .help = "batch-norm statistics over all ranks (layers without sync= follow this)",
     .offset = OFF(model.spec.bn_sync)},

    {.section = "head", .key = "layers", .type = T_LAYERS, .flags = F_EMPTY_OK, .def = "",
     .aliases = "layer hidden architecture",
     .help = "the head's own layers after the trunk (empty: the trunk's output)",
     .offset = HOFF(layers), .aux_offset = HOFF(n_layers)},
    {.section = "head", .key = "loss", .type = T_ENUM, .def = "softmax_cross_entropy",
     .names = loss_names, .aliases = "loss_function criterion",
     .help = "loss on the head's output", .offset = HOFF(loss)},
    {.section = "head", .key = "weight", .type = T_REAL, .flags = F_MIN_OPEN, .def = "1",
     .rmin = 0.0, .rmax = 1000.0, .aliases = "loss_weight lambda scale",
     .help = "weight of the head's loss in the total loss", .offset = HOFF(weight)},
    {.section = "head", .key = "labels", .type = T_LABELS, .def = "data",
     .aliases = "label classes targets groups map",
     .help = "the head's labels: the data set's, or data labels grouped into head labels",
     .offset = HOFF(has_map), .aux_offset = HOFF(map)},

    {.section = "train", .key = "epochs", .type = T_INT, .flags = F_REQUIRED, .def = "20",
     .lmin = 1, .lmax = 1000000, .aliases = "num_epochs n_epochs",
     .help = "passes over the training set", .offset = OFF(train.epochs)},
    {.section = "train", .key = "batch_size", .type = T_INT, .def = "64", .lmin = 1,
     .lmax = 1000000, .aliases = "batch batchsize minibatch",
     .help = "samples per step on each rank (global batch = batch_size x ranks)",
     .offset = OFF(train.batch_size)},
    {.section = "train", .key = "seed", .type = T_U64, .def = "1",
     .aliases = "random_seed rng_seed",
     .help = "seed of the initialization and the shuffling", .offset = OFF(train.seed)},
    {.section = "train", .key = "drop_last", .type = T_BOOL, .def = "false",
     .help = "drop the ragged last global batch of each epoch", .offset = OFF(train.drop_last)},
    {.section = "train", .key = "max_steps", .type = T_LONG, .flags = F_NO_MAX, .def = "0",
     .lmin = 0, .lmax = LONG_MAX, .aliases = "steps max_iter",
     .help = "stop after this many steps (0: no limit)", .offset = OFF(train.max_steps)},

    {.section = "optim", .key = "method", .type = T_ENUM, .def = "sgd", .name_at = method_name_at,
     .aliases = "optimizer algorithm", .help = "optimizer", .offset = OFF(optim.method)},
    {.section = "optim", .key = "lr", .type = T_REAL, .flags = F_REQUIRED | F_MIN_OPEN,
     .def = "0.05", .rmin = 0.0, .rmax = 10.0, .aliases = "learning_rate eta",
     .help = "learning rate of the first step", .offset = OFF(optim.lr)},
    {.section = "optim", .key = "momentum", .type = T_REAL, .flags = F_MAX_OPEN, .def = "0.9",
     .rmin = 0.0, .rmax = 1.0, .aliases = "alpha beta",
     .help = "momentum coefficient alpha (momentum, nesterov, rmsprop_nesterov)",
     .offset = OFF(optim.momentum)},
    {.section = "optim", .key = "rho", .type = T_REAL, .flags = F_MAX_OPEN, .def = "0.9",
     .rmin = 0.0, .rmax = 1.0, .aliases = "decay_rate",
     .help = "decay rate of RMSProp's average of squared gradients", .offset = OFF(optim.rho)},
    {.section = "optim", .key = "beta1", .type = T_REAL, .flags = F_MAX_OPEN, .def = "0.9",
     .rmin = 0.0, .rmax = 1.0, .aliases = "rho1 b1",
     .help = "Adam's decay rate of the first moment (rho1)", .offset = OFF(optim.beta1)},
    {.section = "optim", .key = "beta2", .type = T_REAL, .flags = F_MAX_OPEN, .def = "0.999",
     .rmin = 0.0, .rmax = 1.0, .aliases = "rho2 b2",
     .help = "Adam's decay rate of the second moment (rho2)", .offset = OFF(optim.beta2)},
    {.section = "optim", .key = "delta", .type = T_REAL, .def = "0", .rmin = 0.0, .rmax = 1.0,
     .aliases = "epsilon eps",
     .help = "small constant of adagrad/rmsprop/adam (0: the book's 1e-7, 1e-6, 1e-8)",
     .offset = OFF(optim.delta)},
    {.section = "optim", .key = "weight_decay", .type = T_REAL, .def = "0", .rmin = 0.0,
     .rmax = 1.0, .aliases = "l2 wd decay",
     .help = "L2 penalty: adds weight_decay x theta to the gradient (adamw: decoupled)",
     .offset = OFF(optim.weight_decay)},
    {.section = "optim", .key = "schedule", .type = T_ENUM, .def = "constant",
     .name_at = schedule_name_at, .aliases = "lr_schedule scheduler",
     .help = "learning-rate schedule", .offset = OFF(optim.schedule)},
    {.section = "optim", .key = "lr_final", .type = T_REAL, .flags = F_NO_MAX | F_DEFAULT_LR100,
     .rmin = 0.0, .aliases = "final_lr min_lr lr_min lr_end",
     .help = "learning rate at the end of linear, exponential and cosine decay",
     .offset = OFF(optim.lr_final)},
    {.section = "optim", .key = "decay_steps", .type = T_LONG, .flags = F_NO_MAX, .def = "0",
     .lmin = 0, .lmax = LONG_MAX, .aliases = "lr_decay_steps decay",
     .help = "steps of the decay after the warmup (0: the rest of the run)",
     .offset = OFF(optim.decay_steps)},
    {.section = "optim", .key = "step_size", .type = T_LONG, .flags = F_NO_MAX, .def = "1000",
     .lmin = 1, .lmax = LONG_MAX, .aliases = "lr_step step_every",
     .help = "step schedule: steps between decays by gamma", .offset = OFF(optim.step_size)},
    {.section = "optim", .key = "gamma", .type = T_REAL, .flags = F_MIN_OPEN, .def = "0.1",
     .rmin = 0.0, .rmax = 1.0, .aliases = "lr_gamma factor",
     .help = "step schedule: factor per decay", .offset = OFF(optim.gamma)},
    {.section = "optim", .key = "warmup_steps", .type = T_LONG, .flags = F_NO_MAX, .def = "0",
     .lmin = 0, .lmax = LONG_MAX, .aliases = "warmup",
     .help = "linear warmup over this many steps before the schedule (0: none)",
     .offset = OFF(optim.warmup_steps)},
    {.section = "optim", .key = "max_iter", .type = T_INT, .def = "1000", .lmin = 0, .lmax = 100000000,
     .aliases = "iterations max_iterations",
     .help = "second-order methods: iteration limit", .offset = OFF(solve.max_iter)},
    {.section = "optim", .key = "gtol", .type = T_REAL, .flags = F_NO_MAX, .def = "1e-05", .rmin = 0.0,
     .aliases = "grad_tol gradient_tolerance",
     .help = "second-order methods: stop when |g|_inf <= gtol max(1, |x|_inf)",
     .offset = OFF(solve.gtol)},
    {.section = "optim", .key = "gtol_absolute", .type = T_BOOL, .def = "false",
     .aliases = "absolute_gtol gtol_abs",
     .help = "second-order methods: true: stop when |g|_inf <= gtol (not scaled by |x|_inf)",
     .offset = OFF(solve.gtol_absolute)},
    {.section = "optim", .key = "ftol", .type = T_REAL, .flags = F_NO_MAX, .def = "1e-12", .rmin = 0.0,
     .aliases = "f_tol tolerance",
     .help = "second-order methods: stop when f decreases by <= ftol max(1, |f|)",
     .offset = OFF(solve.ftol)},
    {.section = "optim", .key = "lbfgs_memory", .type = T_INT, .def = "10", .lmin = 1, .lmax = 1000,
     .aliases = "memory history m", .help = "lbfgs: stored (s, y) pairs", .offset = OFF(solve.lbfgs_m)},
    {.section = "optim", .key = "lbfgs_replicated", .type = T_BOOL, .def = "false",
     .aliases = "replicated_history",
     .help = "lbfgs: true: every rank keeps the whole history (default: sharded over the ranks)",
     .offset = OFF(solve.lbfgs_replicated)},
    {.section = "optim", .key = "cg_max_iter", .type = T_INT, .def = "250", .lmin = 1, .lmax = 1000000,
     .aliases = "cg_iters", .help = "newton_cg: linear CG iterations per step",
     .offset = OFF(solve.cg_max_iter)},
    {.section = "optim", .key = "cg_precondition", .type = T_BOOL, .def = "false",
     .aliases = "preconditioner precondition",
     .help = "newton_cg: Martens' diagonal preconditioner (diag of the empirical Fisher + damping)^0.75",
     .offset = OFF(solve.cg_precondition)},
    {.section = "optim", .key = "damping", .type = T_REAL, .flags = F_NO_MAX, .def = "1", .rmin = 0.0,
     .aliases = "lambda lambda0",
     .help = "newton_cg: initial Levenberg-Marquardt damping (adapted by the reduction ratio)",
     .offset = OFF(solve.lambda0)},
    {.section = "optim", .key = "curvature", .type = T_ENUM, .def = "gauss_newton",
     .names = curvature_names, .aliases = "hessian_kind",
     .help = "newton_cg, newton: the exact Hessian or the Gauss-Newton matrix",
     .offset = OFF(solve.curvature)},
    {.section = "optim", .key = "newton_damping", .type = T_REAL, .flags = F_NO_MAX, .def = "0",
     .rmin = 0.0, .aliases = "alpha0 newton_alpha regularization",
     .help = "newton: damping alpha tried first in (C + alpha I) d = -g (raised until positive definite)",
     .offset = OFF(solve.newton_alpha0)},
    {.section = "optim", .key = "newton_solver", .type = T_ENUM, .def = "cholesky",
     .names = newton_solver_names, .aliases = "linear_solver newton_linear",
     .help = "newton: Cholesky (p?potrf), truncated CG on p?gemv, or CG on exact products "
             "preconditioned by the Cholesky factor (pcg)",
     .offset = OFF(solve.newton_solver)},
    {.section = "optim", .key = "newton_fraction", .type = T_REAL, .flags = F_MIN_OPEN, .def = "1",
     .rmin = 0.0, .rmax = 1.0, .aliases = "assembly_fraction newton_sample",
     .help = "newton: share of the curvature samples assembled into the matrix (cost O(samples n^2))",
     .offset = OFF(solve.newton_fraction)},
    {.section = "optim", .key = "newton_refresh", .type = T_INT, .def = "1", .lmin = 1, .lmax = 1000000,
     .aliases = "reassemble_every refresh",
     .help = "newton: assemble the matrix every N iterations (N > 1 only with newton_solver = pcg)",
     .offset = OFF(solve.newton_refresh)},
    {.section = "optim", .key = "ls_c1", .type = T_REAL, .flags = F_MIN_OPEN | F_MAX_OPEN, .def = "0.0001",
     .rmin = 0.0, .rmax = 1.0, .aliases = "c1 armijo sufficient_decrease",
     .help = "second-order line search: sufficient decrease constant (strong Wolfe)",
     .offset = OFF(solve.ls.c1)},
    {.section = "optim", .key = "ls_c2", .type = T_REAL, .flags = F_MIN_OPEN | F_MAX_OPEN, .def = "0.9",
     .rmin = 0.0, .rmax = 1.0, .aliases = "c2 curvature_condition wolfe",
     .help = "second-order line search: curvature constant (strong Wolfe; cg uses 0.1 when 0.9)",
     .offset = OFF(solve.ls.c2)},
    {.section = "optim", .key = "ls_max_evals", .type = T_INT, .def = "40", .lmin = 1, .lmax = 1000,
     .aliases = "line_search_evals ls_evals",
     .help = "second-order line search: function evaluations per search",
     .offset = OFF(solve.ls.max_evals)},
    {.section = "optim", .key = "max_evals", .type = T_LONG, .flags = F_NO_MAX, .def = "100000",
     .lmin = 1, .lmax = LONG_MAX, .aliases = "max_oracle_calls evaluations",
     .help = "second-order methods: limit on oracle calls (evaluations + curvature products)",
     .offset = OFF(solve.max_evals)},
    {.section = "diagnostics", .key = "every", .type = T_INT, .def = "0", .lmin = 0, .lmax = 100000000,
     .aliases = "interval frequency diagnostics_every",
     .help = "every this many steps: curvature along the gradient (g'Hg), Lanczos, noise scale "
             "and layer gradient checks on the current minibatch (0: off)",
     .offset = OFF(diag.every)},
    {.section = "diagnostics", .key = "lanczos_steps", .type = T_INT, .def = "20", .lmin = 0,
     .lmax = 1000, .aliases = "lanczos k lanczos_k",
     .help = "Hessian-vector products per Lanczos run for lambda_min and lambda_max (0: no Lanczos)",
     .offset = OFF(diag.lanczos_steps)},
    {.section = "diagnostics", .key = "noise_scale", .type = T_BOOL, .def = "true",
     .aliases = "gradient_noise noise critical_batch",
     .help = "gradient noise scale and critical batch size (McCandlish et al. 2018; needs 2+ ranks)",
     .offset = OFF(diag.noise_scale)},
    {.section = "diagnostics", .key = "noise_decay", .type = T_REAL, .flags = F_MAX_OPEN, .def = "0.99",
     .rmin = 0.0, .rmax = 1.0, .aliases = "noise_ema ema_decay",
     .help = "EMA decay of the noise scale's |G|^2 and S estimates", .offset = OFF(diag.noise_decay)},
    {.section = "diagnostics", .key = "grad_ratio_min", .type = T_REAL, .flags = F_NO_MAX, .def = "1e-5",
     .rmin = 0.0, .aliases = "vanishing vanishing_ratio",
     .help = "warn of a vanishing gradient when a layer's |g| / |w| falls below this",
     .offset = OFF(diag.grad_ratio_min)},
    {.section = "diagnostics", .key = "grad_ratio_max", .type = T_REAL, .flags = F_NO_MAX | F_MIN_OPEN,
     .def = "10", .rmin = 0.0, .aliases = "exploding exploding_ratio",
     .help = "warn of an exploding gradient when a layer's |g| / |w| rises above this",
     .offset = OFF(diag.grad_ratio_max)},
    {.section = "diagnostics", .key = "file", .type = T_STRING, .flags = F_EMPTY_OK,
     .def = "dptrain-diagnostics.jsonl", .aliases = "output jsonl diagnostics_file path",
     .help = "JSON-lines diagnostics file (empty: none)", .offset = OFF(diag.file)},
    {.section = "diagnostics", .key = "spectrum", .type = T_BOOL, .def = "false",
     .aliases = "eigenvalues eigen",
     .help = "newton: eigenvalues of the curvature matrix (p?syevd) at every iteration",
     .offset = OFF(solve.spectrum)},
    {.section = "optim", .key = "curvature_fraction", .type = T_REAL, .flags = F_MIN_OPEN, .def = "1",
     .rmin = 0.0, .rmax = 1.0, .aliases = "curvature_sample subsample",
     .help = "newton_cg, newton: the share of the batch whose curvature is used",
     .offset = OFF(update.curvature_fraction)},
    {.section = "optim", .key = "solve_samples", .type = T_LONG, .flags = F_NO_MAX, .def = "0",
     .lmin = 0, .lmax = LONG_MAX, .aliases = "full_batch solver_batch",
     .help = "second-order methods: the batch is the first N training samples (0: all of them)",
     .offset = OFF(update.solve_samples)},
    {.section = "optim", .key = "lr_scaling", .type = T_ENUM, .def = "none", .names = scaling_names,
     .aliases = "scaling scale_lr",
     .help = "linear: lr and lr_final x global batch / reference_batch (Goyal et al. 2017)",
     .offset = OFF(update.lr_scaling)},
    {.section = "optim", .key = "reference_batch", .type = T_INT, .def = "256", .lmin = 1,
     .lmax = 100000000, .aliases = "base_batch",
     .help = "the global batch that lr is meant for (lr_scaling = linear)",
     .offset = OFF(update.reference_batch)},
    {.section = "optim", .key = "clip_norm", .type = T_REAL, .flags = F_NO_MAX, .def = "0",
     .rmin = 0.0, .aliases = "max_norm grad_clip clip",
     .help = "clip the averaged gradient to this global L2 norm (0: off)",
     .offset = OFF(update.clip_norm)},
    {.section = "optim", .key = "clip_value", .type = T_REAL, .flags = F_NO_MAX, .def = "0",
     .rmin = 0.0, .aliases = "max_value",
     .help = "clip every averaged gradient element to [-clip_value, clip_value] (0: off)",
     .offset = OFF(update.clip_value)},
    {.section = "optim", .key = "nonfinite", .type = T_ENUM, .def = "abort", .names = nonfinite_names,
     .aliases = "nan nan_policy on_nan",
     .help = "a NaN/Inf gradient on any rank: skip the step (counted, warned) or abort",
     .offset = OFF(update.nonfinite)},
    {.section = "optim", .key = "shard_state", .type = T_ENUM, .def = "auto", .names = tristate_names,
     .aliases = "zero shard sharded",
     .help = "shard the optimizer state over ranks (reduce-scatter, update a slice, all-gather); "
             "auto: on 2 or more ranks when the reduction does not overlap backward",
     .offset = OFF(update.shard_state)},
    {.section = "optim", .key = "overlap", .type = T_ENUM, .def = "auto", .names = tristate_names,
     .aliases = "overlap_comm async",
     .help = "reduce gradient buckets during the backward pass (non-blocking allreduce); "
             "auto: when the last bucket, which cannot overlap, is under half the gradient",
     .offset = OFF(update.overlap)},
    {.section = "optim", .key = "shared_window", .type = T_BOOL, .def = "true",
     .aliases = "shm_exchange",
     .help = "sharded with every rank on one node: exchange gradient and parameter slices through an "
             "MPI shared-memory window instead of messages",
     .offset = OFF(update.shared_window)},
    {.section = "optim", .key = "bucket_mb", .type = T_REAL, .flags = F_MIN_OPEN, .def = "1",
     .rmin = 0.0, .rmax = 4096.0, .aliases = "bucket bucket_size",
     .help = "gradient bucket size in MiB (the first bucket is a quarter of it)",
     .offset = OFF(update.bucket_mb)},

    {.section = "eval", .key = "mc_samples", .type = T_INT, .def = "0", .lmin = 0,
     .lmax = 10000, .aliases = "mc_dropout mc_passes samples passes monte_carlo",
     .help = "Monte Carlo dropout passes at evaluation (0: off)", .offset = OFF(eval.mc_samples)},

    {.section = "ensemble", .key = "members", .type = T_INT, .def = "1", .lmin = 1, .lmax = 4096,
     .aliases = "k size n_members bagging",
     .help = "bagging: k members, each trained by ranks/k ranks; predictions averaged (1: plain training)",
     .offset = OFF(ensemble.members)},
    {.section = "ensemble", .key = "bootstrap", .type = T_BOOL, .def = "true",
     .aliases = "resample bagging_resample",
     .help = "members > 1: each member trains on its own bootstrap resample (else the same data, "
             "its own seed)", .offset = OFF(ensemble.bootstrap)},

    {.section = "checkpoint", .key = "dir", .type = T_STRING, .flags = F_EMPTY_OK, .def = "checkpoints",
     .aliases = "directory path checkpoint_dir",
     .help = "directory of the checkpoints (created if missing; empty: no checkpoints at all)",
     .offset = OFF(checkpoint.dir)},
    {.section = "checkpoint", .key = "every", .type = T_LONG, .flags = F_NO_MAX, .def = "0", .lmin = 0,
     .lmax = LONG_MAX, .aliases = "every_steps steps interval",
     .help = "a checkpoint every this many steps (0: not by steps)", .offset = OFF(checkpoint.every)},
    {.section = "checkpoint", .key = "every_seconds", .type = T_REAL, .flags = F_NO_MAX, .def = "1800",
     .rmin = 0.0, .aliases = "seconds every_s interval_seconds time",
     .help = "a checkpoint every this many seconds of wall time (0: not by time)",
     .offset = OFF(checkpoint.every_seconds)},
    {.section = "checkpoint", .key = "keep", .type = T_INT, .def = "3", .lmin = 1, .lmax = 1000000,
     .aliases = "keep_last max_to_keep retain",
     .help = "how many of the newest checkpoints to keep", .offset = OFF(checkpoint.keep)},
    {.section = "checkpoint", .key = "at_end", .type = T_BOOL, .def = "true",
     .aliases = "final last on_end",
     .help = "write a checkpoint when training ends", .offset = OFF(checkpoint.at_end)},

    {.section = "reliability", .key = "watchdog_seconds", .type = T_REAL, .flags = F_NO_MAX, .def = "600",
     .rmin = 0.0, .aliases = "watchdog stall_seconds timeout",
     .help = "a rank waiting in a collective this long prints the phase and step and aborts the job "
             "(0: off)", .offset = OFF(reliability.watchdog_seconds)},
    {.section = "reliability", .key = "replica_check", .type = T_LONG, .flags = F_NO_MAX, .def = "1000",
     .lmin = 0, .lmax = LONG_MAX, .aliases = "replica_check_every hash_check check_replicas",
     .help = "every this many steps compare a hash of the parameters across ranks (0: off)",
     .offset = OFF(reliability.replica_check)},

    {.section = "log", .key = "every", .type = T_INT, .def = "100", .lmin = 1, .lmax = 100000000,
     .aliases = "interval log_every frequency",
     .help = "steps between log lines and metrics records", .offset = OFF(log.every)},
    {.section = "log", .key = "progress", .type = T_ENUM, .def = "auto", .names = progress_names,
     .aliases = "progress_bar display",
     .help = "progress display (auto: bar on a terminal, else lines)", .offset = OFF(log.progress)},
    {.section = "log", .key = "metrics", .type = T_STRING, .flags = F_EMPTY_OK,
     .def = "dptrain-metrics.jsonl", .aliases = "metrics_file jsonl output",
     .help = "JSON-lines metrics file (empty: none)", .offset = OFF(log.metrics)},
    {.section = "log", .key = "layer_stats", .type = T_INT, .def = "0", .lmin = 0,
     .lmax = 100000000, .aliases = "grad_stats gradient_stats",
     .help = "every this many steps: per-layer gradient and weight norms, update/weight ratio "
             "(0: off)", .offset = OFF(log.layer_stats)},
};
#define N_KEYS ((int)(sizeof keys / sizeof keys[0]))
#define N_SLOTS (DPT_MAX_HEADS + 1)
#define HEAD_PREFIX "head."
#define HEAD_PREFIX_LEN 5

typedef struct section_spec {
    const char *name;
    int is_template;     /* 1: "head", written [head.NAME], repeatable */
    const char *aliases; /* for suggestions only, like key_spec.aliases */
    const char *help;
} section_spec;

/* In the order dpt_config_write and --help show them. */
static const section_spec sections[] = {
    {"data", 0, "dataset datasets files input", "the data files (IDX, .npy, CSV) and how to read them"},
    {"model", 0, "net network nn", "trunk layers, loss, initialization, batch-norm default"},
    {"head", 1, "heads task tasks outputs",
     "a task head (optional, repeatable; NAME: 1..31 of a-z 0-9 _)"},
    {"train", 0, "training trainer", "epochs, per-rank batch size, seed, ragged-batch policy"},
    {"optim", 0, "optimizer optimiser optimization sgd", "optimizer, learning rate and its schedule"},
    {"eval", 0, "evaluation evaluate validation test mc", "Monte Carlo dropout evaluation"},
    {"diagnostics", 0, "diagnostic diag spectrum", "curvature, eigenvalues, noise scale, gradient health"},
    {"ensemble", 0, "bagging ensembles members", "bagging: members trained by groups of ranks"},
    {"checkpoint", 0, "checkpoints ckpt save saving", "checkpoints: where, how often, how many"},
    {"reliability", 0, "safety watchdog faults", "stall watchdog and replica check"},
    {"log", 0, "logging logs output", "progress display and the JSON-lines metrics file"},
};
#define N_SECTIONS ((int)(sizeof sections / sizeof sections[0]))

/* ---------------------------------------------------------------- small helpers */

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }
static int is_blank(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
                                    c == '\f' || c == '\v'; }

static int same_nocase(const char *a, const char *b)
{
    while (*a && lower((unsigned char)*a) == lower((unsigned char)*b)) a++, b++;
    return lower((unsigned char)*a) == lower((unsigned char)*b);
}

/* Edit distance with adjacent transpositions (optimal string alignment:
 * 'lgo' is one edit from 'log', as 'lr' is from 'rl'), case-insensitive (so
 * 'LR' suggests 'lr'). Names longer than the work rows are simply "far" from
 * everything. */
#define LEV_MAX 64
static int edit_distance(const char *a, size_t na, const char *b)
{
    size_t nb = strlen(b);
    if (na >= LEV_MAX || nb >= LEV_MAX) return INT_MAX / 2;
    int rows[3][LEV_MAX + 1]; /* rows i-2, i-1 and i */
    int *before = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= nb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        cur[0] = (int)i;
        int ai = lower((unsigned char)a[i - 1]);
        for (size_t j = 1; j <= nb; j++) {
            int bj = lower((unsigned char)b[j - 1]);
            int best = prev[j - 1] + (ai != bj);
            if (prev[j] + 1 < best) best = prev[j] + 1;
            if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && ai == lower((unsigned char)b[j - 2]) &&
                lower((unsigned char)a[i - 2]) == bj && before[j - 2] + 1 < best)
                best = before[j - 2] + 1;
            cur[j] = best;
        }
        int *spare = before;
        before = prev, prev = cur, cur = spare;
    }
    return prev[nb];
}

/* Distance of `typo` to `name` and to each of its space-separated aliases. */
static int name_distance(const char *typo, const char *name, const char *aliases)
{
    int best = edit_distance(typo, strlen(typo), name);
    for (const char *p = aliases; p && *p;) {
        size_t n = strcspn(p, " ");
        char alias[LEV_MAX];
        if (n < sizeof alias) {
            memcpy(alias, p, n);
            alias[n] = '\0';
            int d = edit_distance(typo, strlen(typo), alias);
            if (d < best) best = d;
        }
        p += n + (p[n] == ' ');
    }
    return best;
}

/* A suggestion is worth making if the typo is close relative to its length,
 * but not a complete replacement of a short word ('x' is no typo of 'lr'). */
static int close_enough(const char *typo, int dist)
{
    int len = (int)strlen(typo);
    int limit = len / 3 > 2 ? len / 3 : 2;
    return dist <= limit && (dist < len || dist == 0);
}

/* s for a one-line message: cut to a readable length, control characters
 * (a newline in a --set value) shown as '?'. */
static const char *shorten(const char *s, char *buf, size_t size)
{
    size_t n = strlen(s), keep = n < size ? n : size - 4;
    for (size_t i = 0; i < keep; i++)
        buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    if (keep < n) memcpy(buf + keep, "...", 3), keep += 3;
    buf[keep] = '\0';
    return buf;
}

/* Appends printf output to buf[size] holding `used` characters; returns the
 * length the text would have, like snprintf (buf keeps a terminated prefix). */
static size_t appendf(char *buf, size_t size, size_t used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t appendf(char *buf, size_t size, size_t used, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int w = vsnprintf(used < size ? buf + used : NULL, used < size ? size - used : 0, fmt, args);
    va_end(args);
    return used + (w > 0 ? (size_t)w : 0);
}

static const key_spec *find_key(const char *section, const char *key)
{
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].key, key) == 0)
            return &keys[i];
    return NULL;
}

/* A fixed section (not the head template) of this name? */
static int section_known(const char *name)
{
    for (int i = 0; i < N_SECTIONS; i++)
        if (!sections[i].is_template && strcmp(sections[i].name, name) == 0) return 1;
    return 0;
}

static int is_head_section(const char *name)
{
    return strncmp(name, HEAD_PREFIX, HEAD_PREFIX_LEN) == 0;
}

/* 1..31 characters of a-z, 0-9 and _ */
static int head_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= DPT_HEAD_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_'))
            return 0;
    return 1;
}

static int find_head(const dpt_config *cfg, const char *name)
{
    for (int h = 0; h < cfg->model.spec.n_heads; h++)
        if (strcmp(cfg->model.spec.heads[h].name, name) == 0) return h;
    return -1;
}

/* Slot of a section as the user names it (0: a fixed section; h + 1: the
 * declared head h) and its name in the table; -1 if it is neither. */
static int resolve_section(const dpt_config *cfg, const char *name, const char **table)
{
    *table = name;
    if (section_known(name)) return 0;
    if (!is_head_section(name)) return -1;
    *table = "head";
    int h = find_head(cfg, name + HEAD_PREFIX_LEN);
    return h < 0 ? -1 : h + 1;
}

/* A table section as messages show it: "optim", "head.NAME". */
static const char *section_shown(const char *table)
{
    return strcmp(table, "head") == 0 ? "head.NAME" : table;
}

/* Where key k of slot lives in cfg. */
static size_t field_offset(const key_spec *k, int slot)
{
    if (slot == 0) return k->offset;
    return OFF(model.spec.heads) + (size_t)(slot - 1) * sizeof(dpt_head_spec) + k->offset;
}

static size_t aux_field_offset(const key_spec *k, int slot)
{
    if (slot == 0) return k->aux_offset;
    return OFF(model.spec.heads) + (size_t)(slot - 1) * sizeof(dpt_head_spec) + k->aux_offset;
}

/* The names of an enum or boolean key; buf has room for ENUM_MAX + 1. */
#define ENUM_MAX 32
static const char *const *enum_names(const key_spec *k, const char **buf)
{
    if (k->type == T_BOOL) return bool_names;
    if (k->names) return k->names;
    int n = 0;
    for (const char *s; n < ENUM_MAX && (s = k->name_at(n)) != NULL; n++) buf[n] = s;
    buf[n] = NULL;
    return buf;
}

/* ---------------------------------------------------------------- descriptions */

/* "sgd, momentum, nesterov" */
static void join_names(const char *const *names, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; names[i]; i++) used = appendf(buf, size, used, "%s%s", i ? ", " : "", names[i]);
}

static void describe_real(const key_spec *k, char *buf, size_t size)
{
    if (k->flags & F_NO_MAX)
        snprintf(buf, size, "a real number %s %g", (k->flags & F_MIN_OPEN) ? ">" : ">=",
                 k->rmin);
    else
        snprintf(buf, size, "a real number with %g %s %s %s %g", k->rmin,
                 (k->flags & F_MIN_OPEN) ? "<" : "<=", k->key,
                 (k->flags & F_MAX_OPEN) ? "<" : "<=", k->rmax);
}

/* What a key accepts, for messages and --help. */
static void describe_allowed(const key_spec *k, char *buf, size_t size)
{
    const char *names[ENUM_MAX + 1];
    switch (k->type) {
    case T_STRING:
        snprintf(buf, size, "%s", (k->flags & F_NOT_PATH) ? "a non-empty word"
                                  : (k->flags & F_EMPTY_OK) ? "a file name (empty: none)"
                                                            : "a non-empty path");
        break;
    case T_INT:
    case T_LONG:
        if (k->flags & F_NO_MAX) snprintf(buf, size, "an integer >= %ld", k->lmin);
        else snprintf(buf, size, "an integer in %ld..%ld", k->lmin, k->lmax);
        break;
    case T_U64:
        snprintf(buf, size, "an integer in 0..%" PRIu64, UINT64_MAX);
        break;
    case T_REAL:
        describe_real(k, buf, size);
        break;
    case T_BOOL:
    case T_ENUM:
        join_names(enum_names(k, names), buf, size);
        break;
    case T_LAYERS:
        snprintf(buf, size, "%s%s; at most %d layers", (k->flags & F_EMPTY_OK) ? "nothing or " : "",
                 dpt_layer_list_grammar(), DPT_MAX_LAYERS);
        break;
    case T_LABELS:
        snprintf(buf, size, "data (the data set's labels) or groups of data labels 0..%d "
                 "separated by '|', e.g. 0,1,2,3,4,6 | 5,7,9 | 8 (group g is head label g)",
                 DPT_LABELS - 1);
        break;
    }
}

/* Index of the name in `names` nearest to `typo` if it is close enough, else -1. */
static int nearest_name(const char *typo, const char *const *names)
{
    int best = INT_MAX, at = -1;
    for (int i = 0; names[i]; i++) {
        int d = edit_distance(typo, strlen(typo), names[i]);
        if (d < best) best = d, at = i;
    }
    return at >= 0 && close_enough(typo, best) ? at : -1;
}

/* "; did you mean 'nesterov'?" for the nearest of `names`, or "". */
static void suggest_name(const char *typo, const char *const *names, char *buf, size_t size)
{
    int at = nearest_name(typo, names);
    buf[0] = '\0';
    if (at >= 0) snprintf(buf, size, "; did you mean '%s'?", names[at]);
}

/* ---------------------------------------------------------------- values */

/* A key being set: where its value goes and how messages name it. */
typedef struct target {
    dpt_config *cfg;
    const key_spec *k;
    int slot;             /* 0: a fixed section; h + 1: head h */
    char section[48];     /* as the user writes it: "optim", "head.coarse" */
    const char *where;    /* "FILE:LINE", "--set 'ARG'" or "built-in default" */
    size_t line_max;      /* longest INI line a value must fit on when written */
} target;

static char *field(const target *t) { return (char *)t->cfg + field_offset(t->k, t->slot); }
static char *aux_field(const target *t)
{
    return (char *)t->cfg + aux_field_offset(t->k, t->slot);
}

/* Room for the value on a written line "key = value". */
static size_t value_room(const target *t)
{
    size_t used = strlen(t->k->key) + 3;
    return t->line_max > used ? t->line_max - used : 0;
}

/* Every message starts with t->where. */
static dpt_status value_error(const target *t, const char *value, const char *problem,
                              const char *suggestion)
{
    char allowed[768], shown[80];
    describe_allowed(t->k, allowed, sizeof allowed);
    return DPT_FAIL(DPT_ERR_CONFIG, "%s: [%s] %s = %s: %s; allowed: %s%s", t->where, t->section,
                    t->k->key, *value ? shorten(value, shown, sizeof shown) : "''", problem,
                    allowed, suggestion ? suggestion : "");
}

typedef enum num_result { NUM_OK, NUM_BAD, NUM_RANGE } num_result;

/* strtol that must consume everything: no blanks, no trailing junk. */
static num_result parse_long(const char *s, long *out)
{
    char *end;
    if (*s == '\0' || is_blank((unsigned char)*s)) return NUM_BAD;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0') return NUM_BAD;
    if (errno == ERANGE) return NUM_RANGE;
    *out = v;
    return NUM_OK;
}

static num_result parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (*s == '\0' || is_blank((unsigned char)*s)) return NUM_BAD;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0') return NUM_BAD;
    /* strtoull quietly negates "-1"; a seed is never negative */
    if (errno == ERANGE || *s == '-' || v > UINT64_MAX) return NUM_RANGE;
    *out = (uint64_t)v;
    return NUM_OK;
}

static num_result parse_real(const char *s, double *out)
{
    char *end;
    if (*s == '\0' || is_blank((unsigned char)*s)) return NUM_BAD;
    double v = strtod(s, &end);
    if (end == s || *end != '\0') return NUM_BAD;
    if (!isfinite(v)) return NUM_RANGE;
    *out = v;
    return NUM_OK;
}

static int real_in_range(const key_spec *k, double v)
{
    if ((k->flags & F_MIN_OPEN) ? !(v > k->rmin) : !(v >= k->rmin)) return 0;
    if (k->flags & F_NO_MAX) return 1;
    return (k->flags & F_MAX_OPEN) ? v < k->rmax : v <= k->rmax;
}

static dpt_status set_integer(const target *t, const char *value)
{
    long v = 0;
    num_result r = parse_long(value, &v);
    if (r == NUM_BAD) return value_error(t, value, "not an integer", NULL);
    if (r == NUM_RANGE || v < t->k->lmin || v > t->k->lmax)
        return value_error(t, value, "out of range", NULL);
    if (t->k->type == T_INT) {
        int iv = (int)v; /* in range: lmax of every T_INT key fits an int */
        memcpy(field(t), &iv, sizeof iv);
    } else {
        memcpy(field(t), &v, sizeof v);
    }
    return DPT_OK;
}

static dpt_status set_u64(const target *t, const char *value)
{
    uint64_t v = 0;
    num_result r = parse_u64(value, &v);
    if (r == NUM_BAD) return value_error(t, value, "not an integer", NULL);
    if (r == NUM_RANGE) return value_error(t, value, "out of range", NULL);
    memcpy(field(t), &v, sizeof v);
    return DPT_OK;
}

static dpt_status set_real(const target *t, const char *value)
{
    double v = 0.0;
    num_result r = parse_real(value, &v);
    if (r == NUM_BAD) return value_error(t, value, "not a real number", NULL);
    if (r == NUM_RANGE) return value_error(t, value, "not a finite number", NULL);
    if (!real_in_range(t->k, v)) return value_error(t, value, "out of range", NULL);
    memcpy(field(t), &v, sizeof v);
    return DPT_OK;
}

/* Index of `value` in `names` (case-insensitive), or -1. */
static int name_index(const char *const *names, const char *value)
{
    for (int i = 0; names[i]; i++)
        if (same_nocase(names[i], value)) return i;
    return -1;
}

static dpt_status set_choice(const target *t, const char *value)
{
    const char *buf[ENUM_MAX + 1];
    const char *const *names = enum_names(t->k, buf);
    int i = name_index(names, value);
    if (i < 0) {
        char hint[96];
        suggest_name(value, names, hint, sizeof hint);
        return value_error(t, value, t->k->type == T_BOOL ? "not a boolean" : "not an allowed value",
                           hint);
    }
    int v = t->k->type == T_BOOL ? i % 2 == 0 : i;
    memcpy(field(t), &v, sizeof v);
    return DPT_OK;
}

/* A string must also survive dpt_config_write and a second parse: inih trims
 * blanks, ends a line at a newline, and reads ';' after a blank as a comment. */
static const char *string_problem(const target *t, const char *value, char *buf, size_t size)
{
    size_t n = strlen(value);
    if (n == 0) return (t->k->flags & F_EMPTY_OK) ? NULL : "must not be empty";
    if (n >= DPT_PATH_MAX) {
        snprintf(buf, size, "too long (%zu characters; at most %d)", n, DPT_PATH_MAX - 1);
        return buf;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return "contains a control character";
        if (c == ';' && (i == 0 || is_blank((unsigned char)value[i - 1])))
            return "contains ';' at the start or after a blank, which INI reads as a comment";
    }
    if (is_blank((unsigned char)value[0]) || is_blank((unsigned char)value[n - 1]))
        return "starts or ends with a blank, which INI drops";
    if (n > value_room(t)) {
        snprintf(buf, size, "too long for one INI line (%zu characters; at most %zu)", n,
                 value_room(t));
        return buf;
    }
    return NULL;
}

static dpt_status set_string(const target *t, const char *value)
{
    char buf[128];
    const char *problem = string_problem(t, value, buf, sizeof buf);
    if (problem) return value_error(t, value, problem, NULL);
    memcpy(field(t), value, strlen(value) + 1);
    return DPT_OK;
}

/* ---------------------------------------------------------------- layer lists */

/* What a word in a layer list may be, for "did you mean" (the grammar is
 * src/nn/spec.c's; the aliases conv2d and bn are accepted but not suggested). */
static const char *const layer_words[] = {
    "dense", "conv", "local", "tiled", "maxpool", "avgpool", "gap", "flatten", "relu", "tanh",
    "sigmoid", "identity", "dropout", "batchnorm", NULL};
static const char *const option_words[] = {"stride", "dilation", "pad", "tiles", "init",
                                           "bias", "momentum", "eps", "sync", NULL};
static const char *const pad_words[] = {"valid", "same", "full", NULL};
static const char *const sync_words[] = {"true", "false", NULL};

/* The names that the word quoted in a reason of dpt_layer_list_parse is
 * one of, judged by the reason's wording; NULL: no suggestion. */
static const char *const *layer_hint_names(const char *why, const char **buf)
{
    if (strstr(why, "unknown option")) return option_words;
    if (strstr(why, "unknown init")) return enum_names(find_key("model", "init"), buf);
    if (strstr(why, "pad '")) return pad_words;
    if (strstr(why, "sync '")) return sync_words;
    if (strstr(why, "unknown layer") || strstr(why, "not an activation")) return layer_words;
    return NULL;
}

/* "; did you mean 'conv'?" for the first quoted word of `why`, or "". */
static void layer_hint(const char *why, char *hint, size_t size)
{
    const char *buf[ENUM_MAX + 1];
    const char *const *names = layer_hint_names(why, buf);
    const char *open = strchr(why, '\'');
    const char *close = open ? strchr(open + 1, '\'') : NULL;
    hint[0] = '\0';
    if (!names || !close || close - open - 1 >= LEV_MAX) return;
    char word[LEV_MAX];
    snprintf(word, sizeof word, "%.*s", (int)(close - open - 1), open + 1);
    if (name_index(names, word) < 0) suggest_name(word, names, hint, size);
}

/* The list as dpt_config_write puts it on one line: ", " between the
 * layers, or "," if that is too long for `room`. */
static size_t format_layers(const dpt_layer_spec *layers, int n, size_t room, char *buf,
                            size_t size)
{
    size_t len = dpt_layer_list_format(layers, n, buf, size);
    if (len <= room || len >= size) return len;
    char *out = buf;
    for (const char *p = buf; *p; p++) {
        *out++ = *p;
        if (*p == ',' && p[1] == ' ') p++;
    }
    *out = '\0';
    return (size_t)(out - buf);
}

/* A layer list -> layers and count, all or nothing. Names are not case
 * sensitive anywhere in the configuration, so the list is lowered first. */
static dpt_status set_layers(const target *t, const char *value)
{
    char text[VALUE_BUF], why[256], hint[96];
    dpt_layer_spec layers[DPT_MAX_LAYERS];
    int n = 0;
    size_t len = strlen(value);
    if (len >= sizeof text) return value_error(t, value, "too long", NULL);
    for (size_t i = 0; i <= len; i++) text[i] = (char)lower((unsigned char)value[i]);
    if (len == 0 && !(t->k->flags & F_EMPTY_OK))
        return value_error(t, value, "no layers given", NULL);
    if (len > 0 && dpt_layer_list_parse(text, layers, DPT_MAX_LAYERS, &n, why, sizeof why) != DPT_OK) {
        layer_hint(why, hint, sizeof hint);
        return value_error(t, value, why, hint);
    }
    /* the shortest form dpt_config_write may use: "," between the layers */
    size_t written = n > 0 ? dpt_layer_list_format(layers, n, NULL, 0) - (size_t)(n - 1) : 0;
    if (written > value_room(t)) {
        snprintf(why, sizeof why, "too long to write back as one INI line (%zu characters; at "
                 "most %zu)", written, value_room(t));
        return value_error(t, value, why, NULL);
    }
    memcpy(field(t), layers, (size_t)n * sizeof layers[0]);
    memcpy(aux_field(t), &n, sizeof n);
    return DPT_OK;
}

/* ---------------------------------------------------------------- head labels */

static void trim_span(const char **begin, const char **end)
{
    while (*begin < *end && is_blank((unsigned char)**begin)) (*begin)++;
    while (*end > *begin && is_blank((unsigned char)(*end)[-1])) (*end)--;
}

/* Copies [begin, end) into buf; a name too long for buf is cut, which
 * cannot turn it into a valid name since all of them are short. */
static void copy_span(const char *begin, const char *end, char *buf, size_t size)
{
    size_t n = (size_t)(end - begin);
    if (n >= size) n = size - 1;
    memcpy(buf, begin, n);
    buf[n] = '\0';
}

/* "data" or "0,1 | 2": groups of ascending labels (the map knows no order). */
static size_t format_labels(int has_map, const int16_t *map, char *buf, size_t size)
{
    if (!has_map) return appendf(buf, size, 0, "data");
    int groups = 0;
    for (int l = 0; l < DPT_LABELS; l++)
        if (map[l] >= groups) groups = map[l] + 1;
    size_t used = 0;
    buf[0] = '\0';
    for (int g = 0; g < groups; g++) {
        const char *sep = g ? " | " : "";
        for (int l = 0; l < DPT_LABELS; l++)
            if (map[l] == g) used = appendf(buf, size, used, "%s%d", sep, l), sep = ",";
    }
    return used;
}

/* Item `item` [b, e) of group g (both 0-based); "" if it is a new label. */
static void label_problem(const char *b, const char *e, int g, int item, const int16_t *map,
                          long *label, char *problem, size_t size)
{
    char word[24];
    copy_span(b, e, word, sizeof word);
    num_result r = e - b < (ptrdiff_t)sizeof word ? parse_long(word, label) : NUM_BAD;
    problem[0] = '\0';
    if (b == e)
        snprintf(problem, size, "group %d: item %d is empty", g + 1, item + 1);
    else if (r == NUM_BAD)
        snprintf(problem, size, "group %d: '%s' is not a label (an integer)", g + 1, word);
    else if (r == NUM_RANGE || *label < 0 || *label >= DPT_LABELS)
        snprintf(problem, size, "group %d: label %s is out of range 0..%d", g + 1, word,
                 DPT_LABELS - 1);
    else if (map[*label] == g)
        snprintf(problem, size, "group %d: label %ld is given twice", g + 1, *label);
    else if (map[*label] >= 0)
        snprintf(problem, size, "label %ld is in group %d and in group %d", *label,
                 map[*label] + 1, g + 1);
}

/* Group g = [p, end): comma-separated labels, each mapped to g. */
static int parse_group(const char *p, const char *end, int g, int16_t *map, char *problem,
                       size_t size)
{
    const char *b = p, *e = end;
    trim_span(&b, &e);
    if (b == e) return snprintf(problem, size, "group %d is empty", g + 1), -1;
    for (int item = 0;; item++) {
        const char *stop = p;
        while (stop < end && *stop != ',') stop++;
        long label = 0;
        b = p, e = stop;
        trim_span(&b, &e);
        label_problem(b, e, g, item, map, &label, problem, size);
        if (problem[0]) return -1;
        map[label] = (int16_t)g;
        if (stop == end) return 0;
        p = stop + 1;
    }
}

static int parse_groups(const char *value, int16_t *map, char *problem, size_t size)
{
    for (int g = 0;; g++) {
        size_t len = strcspn(value, "|");
        if (parse_group(value, value + len, g, map, problem, size) != 0) return -1;
        if (value[len] == '\0') return 0;
        value += len + 1;
    }
}

static dpt_status set_labels(const target *t, const char *value)
{
    static const char *const data_word[] = {"data", NULL};
    int16_t map[DPT_LABELS];
    char problem[160], hint[96] = "", text[VALUE_BUF];
    for (int l = 0; l < DPT_LABELS; l++) map[l] = -1;
    int has_map = !same_nocase(value, "data");
    if (has_map && *value == '\0') return value_error(t, value, "no groups given", NULL);
    if (has_map && parse_groups(value, map, problem, sizeof problem) != 0) {
        suggest_name(value, data_word, hint, sizeof hint);
        return value_error(t, value, problem, hint);
    }
    size_t len = format_labels(has_map, map, text, sizeof text);
    if (len > value_room(t)) {
        snprintf(problem, sizeof problem, "too long to write back as one INI line (%zu "
                 "characters; at most %zu)", len, value_room(t));
        return value_error(t, value, problem, NULL);
    }
    memcpy(field(t), &has_map, sizeof has_map);
    memcpy(aux_field(t), map, sizeof map);
    return DPT_OK;
}

/* Checks `value` against key k and stores it in cfg (slot: see target);
 * on error records the message and leaves cfg's field as it was. */
static dpt_status apply_value(dpt_config *cfg, const key_spec *k, int slot, const char *value,
                              const char *where, size_t line_max)
{
    target t = {.cfg = cfg, .k = k, .slot = slot, .where = where, .line_max = line_max};
    if (slot > 0)
        snprintf(t.section, sizeof t.section, HEAD_PREFIX "%s", cfg->model.spec.heads[slot - 1].name);
    else
        snprintf(t.section, sizeof t.section, "%s", k->section);
    switch (k->type) {
    case T_STRING: return set_string(&t, value);
    case T_INT:
    case T_LONG: return set_integer(&t, value);
    case T_U64: return set_u64(&t, value);
    case T_BOOL:
    case T_ENUM: return set_choice(&t, value);
    case T_REAL: return set_real(&t, value);
    case T_LAYERS: return set_layers(&t, value);
    case T_LABELS: return set_labels(&t, value);
    }
    return DPT_FAIL(DPT_ERR_CONFIG, "%s: [%s] %s: unknown key type", where, t.section, k->key);
}

/* ---------------------------------------------------------------- names */

/* "method, lr, momentum, ..." */
static void list_keys(const char *section, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].section, section) == 0)
            used = appendf(buf, size, used, "%s%s", used ? ", " : "", keys[i].key);
}

static void list_sections(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < N_SECTIONS; i++)
        used = appendf(buf, size, used, "%s[%s]", i ? ", " : "", section_shown(sections[i].name));
}

/* The nearest key to `typo`: in `section` (a table section) first; an exact
 * name in another section wins, since then the key was only put in the
 * wrong place. */
static void suggest_key(const char *section, const char *typo, char *buf, size_t size)
{
    const key_spec *local = NULL, *other = NULL;
    int dl = INT_MAX, dot = INT_MAX;
    for (int i = 0; i < N_KEYS; i++) {
        int same = strcmp(keys[i].section, section) == 0;
        int d = name_distance(typo, keys[i].key, keys[i].aliases);
        if (same && d < dl) dl = d, local = &keys[i];
        if (!same && d < dot) dot = d, other = &keys[i];
    }
    buf[0] = '\0';
    if (other && dot == 0 && dl != 0)
        snprintf(buf, size, "did you mean [%s] %s? ", section_shown(other->section), other->key);
    else if (local && close_enough(typo, dl))
        snprintf(buf, size, "did you mean '%s'? ", local->key);
    else if (other && close_enough(typo, dot))
        snprintf(buf, size, "did you mean [%s] %s? ", section_shown(other->section), other->key);
}

/* The section nearest to `word` and its distance. */
static int nearest_section(const char *word, int *dist)
{
    int at = -1;
    *dist = INT_MAX;
    for (int i = 0; i < N_SECTIONS; i++) {
        int d = name_distance(word, sections[i].name, sections[i].aliases);
        if (d < *dist) *dist = d, at = i;
    }
    return close_enough(word, *dist) ? at : -1;
}

/* Compares the whole name and the part before its first '.', so that
 * [heads.x] and [haed.x] find [head.NAME]. */
static void suggest_section(const char *typo, char *buf, size_t size)
{
    char prefix[LEV_MAX];
    copy_span(typo, typo + strcspn(typo, "."), prefix, sizeof prefix);
    int d_whole, d_prefix;
    int whole = nearest_section(typo, &d_whole), part = nearest_section(prefix, &d_prefix);
    int at = part >= 0 && (whole < 0 || d_prefix < d_whole) ? part : whole;
    buf[0] = '\0';
    if (at >= 0) snprintf(buf, size, "did you mean [%s]? ", section_shown(sections[at].name));
}

static dpt_status unknown_section(const char *where, const char *name)
{
    char hint[64], all[128], shown[80];
    suggest_section(name, hint, sizeof hint);
    list_sections(all, sizeof all);
    return DPT_FAIL(DPT_ERR_CONFIG, "%s: section [%s] is unknown; %ssections: %s", where,
                    shorten(name, shown, sizeof shown), hint, all);
}

/* `shown` is the section as the user wrote it, `table` its table name. */
static dpt_status unknown_key(const char *where, const char *shown, const char *table,
                              const char *key)
{
    char hint[96], all[256], key_shown[80];
    suggest_key(table, key, hint, sizeof hint);
    if (*shown == '\0')
        return DPT_FAIL(DPT_ERR_CONFIG, "%s: key '%s' comes before any [section]; %s"
                        "put it under its section", where, shorten(key, key_shown, sizeof key_shown),
                        hint);
    list_keys(table, all, sizeof all);
    return DPT_FAIL(DPT_ERR_CONFIG, "%s: [%s] key '%s' is unknown; %skeys of [%s]: %s", where,
                    shown, shorten(key, key_shown, sizeof key_shown), hint, shown, all);
}

static dpt_status bad_head_name(const char *where, const char *name)
{
    char shown[80];
    return DPT_FAIL(DPT_ERR_CONFIG, "%s: [" HEAD_PREFIX "%s]: a head name is 1..%d characters "
                    "of a-z, 0-9 and _ (e.g. [head.coarse])", where,
                    shorten(name, shown, sizeof shown), DPT_HEAD_NAME_MAX - 1);
}

/* --set naming a head the file does not define: --set adds no heads, since
 * a misspelt head name would otherwise quietly become a new head. */
static dpt_status unknown_head(const char *where, const dpt_config *cfg, const char *source,
                               const char *name)
{
    if (!head_name_ok(name)) return bad_head_name(where, name);
    const dpt_model_spec *spec = &cfg->model.spec;
    const char *names[DPT_MAX_HEADS + 1];
    for (int h = 0; h < spec->n_heads; h++) names[h] = spec->heads[h].name;
    names[spec->n_heads] = NULL;
    char hint[64] = "", all[DPT_MAX_HEADS * (DPT_HEAD_NAME_MAX + 2) + 1];
    int at = nearest_name(name, names);
    if (at >= 0) snprintf(hint, sizeof hint, "did you mean [head.%s]? ", names[at]);
    join_names(names, all, sizeof all);
    if (spec->n_heads == 0)
        return DPT_FAIL(DPT_ERR_CONFIG, "%s: %s has no [head.%s]; --set only changes heads the "
                        "file defines, and it defines none (add a [head.%s] section)", where,
                        source, name, name);
    return DPT_FAIL(DPT_ERR_CONFIG, "%s: %s has no [head.%s]; %s--set only changes heads the "
                    "file defines (heads: %s)", where, source, name, hint, all);
}

/* ---------------------------------------------------------------- parsing */

typedef struct parse_ctx {
    dpt_config *cfg;
    const char *source;   /* the file's name in messages */
    const char *next;     /* the text not yet handed to inih */
    int line;             /* number of the line inih is working on */
    size_t line_max;      /* longest line (without newline) inih's buffer takes */
    int file_line[N_SLOTS][N_KEYS]; /* line where the file gave each key; 0: not given */
    int overridden[N_SLOTS][N_KEYS];
    int failed_line;      /* line of the first error we found; 0: none */
} parse_ctx;

static void file_where(const parse_ctx *ctx, char *buf, size_t size)
{
    snprintf(buf, size, "%s:%d", ctx->source, ctx->line);
}

/* Head h named `name` with every key at its default. */
static dpt_status head_defaults(dpt_config *cfg, int h, const char *name)
{
    dpt_head_spec *head = &cfg->model.spec.heads[h];
    memset(head, 0, sizeof *head);
    memcpy(head->name, name, strlen(name) + 1); /* head_name_ok: it fits */
    for (int i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].section, "head") != 0) continue;
        dpt_status st = apply_value(cfg, &keys[i], h + 1, keys[i].def, "built-in default",
                                    WRITE_LINE_MAX);
        if (st != DPT_OK) return st;
    }
    return DPT_OK;
}

/* [head.NAME]: a new head gets the next index; a later header of the same
 * head reopens it, like any section. */
static dpt_status declare_head(dpt_config *cfg, const char *name, const char *where)
{
    if (!head_name_ok(name)) return bad_head_name(where, name);
    if (find_head(cfg, name) >= 0) return DPT_OK;
    dpt_model_spec *spec = &cfg->model.spec;
    if (spec->n_heads >= DPT_MAX_HEADS)
        return DPT_FAIL(DPT_ERR_CONFIG, "%s: [" HEAD_PREFIX "%s] is one head too many (at most "
                        "%d [head.NAME] sections)", where, name, DPT_MAX_HEADS);
    spec->n_heads++;
    return head_defaults(cfg, spec->n_heads - 1, name);
}

/* Checks a "[name]" line the way inih will read it (up to ']' unless an
 * inline comment comes first) and declares heads; a malformed header is
 * left to inih, which reports it as a syntax error. Sections are checked
 * here and not in the handler because inih calls no handler for a section
 * without keys (and an empty [head.NAME] is a head with default keys). */
static int check_section_line(parse_ctx *ctx, const char *line)
{
    if (ctx->line == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0) line += 3; /* UTF-8 BOM */
    if (*line != '[') return 0;
    const char *end = line + 1;
    for (int was_blank = 0; *end && *end != ']' && !(was_blank && *end == ';'); end++)
        was_blank = is_blank((unsigned char)*end);
    if (*end != ']') return 0;
    char name[DPT_PATH_MAX], where[DPT_PATH_MAX + 32];
    copy_span(line + 1, end, name, sizeof name);
    if (section_known(name)) return 0;
    file_where(ctx, where, sizeof where);
    dpt_status st = is_head_section(name)
                        ? declare_head(ctx->cfg, name + HEAD_PREFIX_LEN, where)
                        : unknown_section(where, name);
    return st == DPT_OK ? 0 : -1;
}

/* ini_reader: hands inih one line of the text per call, so that ctx->line
 * is the line of every handler call. Leading blanks are dropped: inih would
 * take an indented line as the continuation of the previous value, which
 * only hides mistakes in a file like ours. */
static char *read_line(char *buf, int num, void *stream)
{
    parse_ctx *ctx = stream;
    if (ctx->failed_line || *ctx->next == '\0') return NULL;
    const char *start = ctx->next;
    size_t len = strcspn(start, "\n");
    ctx->next = start + len + (start[len] == '\n');
    ctx->line++;
    if (len > 0 && start[len - 1] == '\r') len--;
    /* room for the line, a '\n' (so inih never waits for the rest) and NUL */
    ctx->line_max = num > 2 ? (size_t)num - 2 : 0;
    if (len > ctx->line_max) {
        char where[DPT_PATH_MAX + 32];
        file_where(ctx, where, sizeof where);
        DPT_FAIL(DPT_ERR_CONFIG, "%s: line too long (%zu characters; at most %zu)", where,
                 len, ctx->line_max);
        ctx->failed_line = ctx->line;
        return NULL;
    }
    while (len > 0 && (*start == ' ' || *start == '\t')) start++, len--;
    memcpy(buf, start, len);
    buf[len] = '\n';
    buf[len + 1] = '\0';
    if (check_section_line(ctx, buf) != 0) {
        ctx->failed_line = ctx->line;
        return NULL;
    }
    return buf;
}

/* A key of the file: each (slot, key) at most once. */
static dpt_status file_value(parse_ctx *ctx, const key_spec *k, int slot, const char *section,
                             const char *value, const char *where)
{
    int *given = &ctx->file_line[slot][k - keys];
    if (*given)
        return DPT_FAIL(DPT_ERR_CONFIG, "%s: [%s] %s is given twice (lines %d and %d); keep one",
                        where, section, k->key, *given, ctx->line);
    *given = ctx->line;
    return apply_value(ctx->cfg, k, slot, value, where, ctx->line_max);
}

/* ini_handler: one "key = value" of the file. Returns 0 on an error, after
 * which read_line ends the text, so the first error in text order wins. */
static int on_key(void *user, const char *section, const char *key, const char *value)
{
    parse_ctx *ctx = user;
    char where[DPT_PATH_MAX + 32];
    file_where(ctx, where, sizeof where);
    const char *table;
    int slot = resolve_section(ctx->cfg, section, &table);
    const key_spec *k = slot >= 0 ? find_key(table, key) : NULL;
    dpt_status st;
    if (k) st = file_value(ctx, k, slot, section, value, where);
    else if (slot >= 0 || !*section) st = unknown_key(where, section, table, key);
    else st = unknown_section(where, section);
    if (st == DPT_OK) return 1;
    ctx->failed_line = ctx->line;
    return 0;
}

/* inih's line buffer: INI_LINE_BUF bytes on the heap where the library lets
 * us say so (a global setting of libinih, the same for every parse). */
static void configure_inih(void)
{
#ifdef DPT_INIH_RUNTIME_OPTIONS
    ini_use_stack = false;
    ini_allow_realloc = false;
    ini_initial_alloc = INI_LINE_BUF; /* the heap buffer's size: inih passes it to read_line */
    ini_max_line = INI_LINE_BUF;
#endif
}

static dpt_status parse_text(parse_ctx *ctx, const char *text)
{
    ctx->next = text;
    configure_inih();
    int rc = ini_parse_stream(read_line, ctx, on_key, ctx);
    /* inih goes on after a syntax error, so an error of ours may come later
     * in the text; the earlier line is the one to report */
    if (rc > 0 && (ctx->failed_line == 0 || rc < ctx->failed_line))
        return DPT_FAIL(DPT_ERR_CONFIG,
                        "%s:%d: syntax error: expected 'key = value' or '[section]'",
                        ctx->source, rc);
    if (rc < 0) return DPT_FAIL(DPT_ERR_NOMEM, "%s: the INI parser ran out of memory",
                                ctx->source);
    return ctx->failed_line ? DPT_ERR_CONFIG : DPT_OK;
}

/* ---------------------------------------------------------------- --set */

/* An argument without '=' or without "section." (`name` is its key part). */
static dpt_status malformed_override(const char *where, int has_eq, int has_dot,
                                     const char *name)
{
    char hint[96] = "";
    if (!has_dot) suggest_key("", name, hint, sizeof hint);
    size_t n = strlen(hint);
    if (n > 0) hint[n - 1] = '\0'; /* the trailing blank */
    return DPT_FAIL(DPT_ERR_CONFIG, "%s: %s; expected section.key=value (e.g. --set "
                    "optim.lr=0.05)%s%s", where, has_eq ? "no 'section.' before the key"
                    : "no '=' and value", n ? "; " : "", hint);
}

/* "section.key" ends at its last '.': head.coarse.weight is [head.coarse] weight. */
static const char *last_dot(const char *begin, const char *end)
{
    while (end > begin && end[-1] != '.') end--;
    return end > begin ? end - 1 : NULL;
}

static dpt_status override_value(parse_ctx *ctx, const char *section, const char *key,
                                 const char *value, const char *where)
{
    const char *table;
    int slot = resolve_section(ctx->cfg, section, &table);
    if (slot < 0)
        return is_head_section(section)
                   ? unknown_head(where, ctx->cfg, ctx->source, section + HEAD_PREFIX_LEN)
                   : unknown_section(where, section);
    const key_spec *k = find_key(table, key);
    if (!k) return unknown_key(where, section, table, key);
    dpt_status st = apply_value(ctx->cfg, k, slot, value, where, ctx->line_max);
    if (st == DPT_OK) ctx->overridden[slot][k - keys] = 1;
    return st;
}

/* One --set argument "section.key=value"; it may re-set a key of the file. */
static dpt_status apply_override(parse_ctx *ctx, const char *arg)
{
    char where[160], shown[128], section[64], key[64], value[2 * DPT_PATH_MAX];
    snprintf(where, sizeof where, "--set '%s'", shorten(arg, shown, sizeof shown));
    const char *eq = strchr(arg, '=');
    const char *name = arg, *name_end = eq ? eq : arg + strlen(arg);
    trim_span(&name, &name_end);
    const char *dot = last_dot(name, name_end);
    copy_span(dot ? dot + 1 : name, name_end, key, sizeof key);
    if (!eq || !dot) return malformed_override(where, eq != NULL, dot != NULL, key);
    copy_span(name, dot, section, sizeof section);
    const char *val = eq + 1, *val_end = eq + 1 + strlen(eq + 1);
    trim_span(&val, &val_end);
    if ((size_t)(val_end - val) >= sizeof value)
        return DPT_FAIL(DPT_ERR_CONFIG, "%s: the value is too long (%zu characters)", where,
                        (size_t)(val_end - val));
    copy_span(val, val_end, value, sizeof value);
    return override_value(ctx, section, key, value, where);
}

/* ---------------------------------------------------------------- loading */

static int key_given(const parse_ctx *ctx, int i)
{
    return ctx->file_line[0][i] != 0 || ctx->overridden[0][i];
}

/* A CSV file with a label column carries its labels: a labels key that
 * still names the default IDX file (left out, or kept from a copy of
 * configs/default.ini) is empty for it. Any other labels file stays, and
 * loading the data says that two sources of labels are one too many. */
static void csv_labels_default(dpt_config *cfg)
{
    if (strcmp(cfg->data.label_column, "none") == 0) return;
    char *images[2] = {cfg->data.train_images, cfg->data.test_images};
    char *labels[2] = {cfg->data.train_labels, cfg->data.test_labels};
    const char *keys_of[2] = {"train_labels", "test_labels"};
    for (int i = 0; i < 2; i++)
        if (dpt_data_format_of((dpt_data_format)cfg->data.format, images[i]) == DPT_FORMAT_CSV &&
            strcmp(labels[i], find_key("data", keys_of[i])->def) == 0)
            labels[i][0] = '\0';
}

/* After everything is applied, so that an override can supply a key the
 * file lacks, and lr_final follows an overridden lr. Heads have no
 * required keys. */
static dpt_status finish(parse_ctx *ctx)
{
    for (int i = 0; i < N_KEYS; i++) {
        const key_spec *k = &keys[i];
        if ((k->flags & F_REQUIRED) && !key_given(ctx, i))
            return DPT_FAIL(DPT_ERR_CONFIG, "%s: required key [%s] %s is missing (e.g. %s = %s)",
                            ctx->source, k->section, k->key, k->key, k->def);
        if ((k->flags & F_DEFAULT_LR100) && !key_given(ctx, i))
            memcpy((char *)ctx->cfg + k->offset, &(double){ctx->cfg->optim.lr / 100.0},
                   sizeof(double));
    }
    csv_labels_default(ctx->cfg);
    const dpt_config *cfg = ctx->cfg;
    if (cfg->ensemble.members > 1 && dpt_optim_is_second_order(cfg->optim.method))
        return DPT_FAIL(DPT_ERR_CONFIG, "%s: [ensemble] members = %d needs a first-order [optim] "
                        "method (sgd, momentum, nesterov, adagrad, rmsprop, adam), not %s", ctx->source,
                        cfg->ensemble.members, dpt_optim_method_name(cfg->optim.method));
    if (!(cfg->diag.grad_ratio_min < cfg->diag.grad_ratio_max))
        return DPT_FAIL(DPT_ERR_CONFIG, "%s: [diagnostics] grad_ratio_min (%g) must be below "
                        "grad_ratio_max (%g)", ctx->source, cfg->diag.grad_ratio_min,
                        cfg->diag.grad_ratio_max);
    return DPT_OK;
}

/* Every non-required key of the fixed sections from its default text;
 * required ones get their example so that the struct never holds garbage,
 * although the load fails unless the user gives them. The defaults go
 * through the same checks as user input, so a broken table shows up as an
 * error, not as bad values. No heads: each [head.NAME] gets its defaults
 * when it is declared. */
static dpt_status set_defaults(dpt_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    /* solver settings without keys (line-search limits, CG tolerances)
     * keep the solve module's defaults */
    dpt_solve_params_init(&cfg->solve);
    for (int i = 0; i < N_KEYS; i++) {
        if (!keys[i].def || strcmp(keys[i].section, "head") == 0) continue;
        dpt_status st = apply_value(cfg, &keys[i], 0, keys[i].def, "built-in default",
                                    WRITE_LINE_MAX);
        if (st != DPT_OK) return st;
    }
    return DPT_OK;
}

static dpt_status load_into(dpt_config *work, parse_ctx *ctx, const char *text,
                            const char *const *overrides, int n_overrides)
{
    dpt_status st = set_defaults(work);
    if (st == DPT_OK) st = parse_text(ctx, text);
    for (int i = 0; i < n_overrides && st == DPT_OK; i++)
        st = overrides[i] ? apply_override(ctx, overrides[i])
                          : DPT_FAIL(DPT_ERR_ARG, "dpt_config_load: override %d is NULL", i);
    return st == DPT_OK ? finish(ctx) : st;
}

dpt_status dpt_config_load(dpt_config *cfg, const char *text, const char *source_name,
                           const char *const *overrides, int n_overrides)
{
    if (!cfg || !text || n_overrides < 0 || (n_overrides > 0 && !overrides))
        return DPT_FAIL(DPT_ERR_ARG, "dpt_config_load: NULL config/text or bad overrides");
    /* work on a copy (on the heap: with the heads it is large): on failure
     * the caller's cfg stays as it was */
    dpt_config *work = malloc(sizeof *work);
    parse_ctx *ctx = calloc(1, sizeof *ctx);
    dpt_status st = DPT_OK;
    if (!work || !ctx) {
        st = DPT_FAIL(DPT_ERR_NOMEM, "dpt_config_load: out of memory");
    } else {
        ctx->cfg = work;
        ctx->source = source_name ? source_name : "<config>";
        ctx->line_max = WRITE_LINE_MAX;
        st = load_into(work, ctx, text, overrides, n_overrides);
    }
    if (st == DPT_OK) *cfg = *work;
    free(work);
    free(ctx);
    return st;
}

/* ---------------------------------------------------------------- writing */

/* An enum value out of the table is written as a number, which
 * dpt_config_load then rejects instead of silently changing it. */
static void format_enum(const key_spec *k, int value, char *buf, size_t size)
{
    const char *names_buf[ENUM_MAX + 1];
    const char *const *names = enum_names(k, names_buf);
    for (int n = 0; names[n]; n++)
        if (n == value) {
            snprintf(buf, size, "%s", names[n]);
            return;
        }
    snprintf(buf, size, "%d", value);
}

/* The value of key k of slot in cfg, in the form dpt_config_load reads back. */
static void format_value(const dpt_config *cfg, const key_spec *k, int slot, char *buf,
                         size_t size)
{
    const char *f = (const char *)cfg + field_offset(k, slot);
    const char *aux = (const char *)cfg + aux_field_offset(k, slot);
    int i = 0;
    long l = 0;
    uint64_t u = 0;
    double r = 0.0;
    switch (k->type) {
    case T_STRING: snprintf(buf, size, "%s", f); break;
    case T_INT: memcpy(&i, f, sizeof i); snprintf(buf, size, "%d", i); break;
    case T_LONG: memcpy(&l, f, sizeof l); snprintf(buf, size, "%ld", l); break;
    case T_U64: memcpy(&u, f, sizeof u); snprintf(buf, size, "%" PRIu64, u); break;
    case T_BOOL: memcpy(&i, f, sizeof i); snprintf(buf, size, "%s", i ? "true" : "false"); break;
    case T_REAL: memcpy(&r, f, sizeof r); snprintf(buf, size, "%.17g", r); break;
    case T_ENUM: memcpy(&i, f, sizeof i); format_enum(k, i, buf, size); break;
    case T_LAYERS:
        memcpy(&i, aux, sizeof i);
        i = i < 0 ? 0 : i > DPT_MAX_LAYERS ? DPT_MAX_LAYERS : i;
        format_layers((const dpt_layer_spec *)f, i, WRITE_LINE_MAX - strlen(k->key) - 3, buf, size);
        break;
    case T_LABELS:
        memcpy(&i, f, sizeof i);
        format_labels(i, (const int16_t *)aux, buf, size);
        break;
    }
}

/* The keys of table section `section` in slot. */
static void write_keys(const dpt_config *cfg, const char *section, int slot, FILE *out)
{
    char value[VALUE_BUF];
    for (int i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].section, section) != 0) continue;
        format_value(cfg, &keys[i], slot, value, sizeof value);
        fprintf(out, "%s =%s%s\n", keys[i].key, *value ? " " : "", value);
    }
}

void dpt_config_write(const dpt_config *cfg, FILE *out)
{
    int n_heads = cfg->model.spec.n_heads;
    n_heads = n_heads < 0 ? 0 : n_heads > DPT_MAX_HEADS ? DPT_MAX_HEADS : n_heads;
    for (int s = 0; s < N_SECTIONS; s++) {
        if (!sections[s].is_template) {
            fprintf(out, "%s[%s]\n", s ? "\n" : "", sections[s].name);
            write_keys(cfg, sections[s].name, 0, out);
        }
        for (int h = 0; sections[s].is_template && h < n_heads; h++) {
            fprintf(out, "\n[" HEAD_PREFIX "%.*s]\n", DPT_HEAD_NAME_MAX - 1,
                    cfg->model.spec.heads[h].name);
            write_keys(cfg, sections[s].name, h + 1, out);
        }
    }
}

/* text after `indent` blanks, wrapped at blanks to lines of about 78 columns. */
static void print_wrapped(FILE *out, int indent, const char *text)
{
    const int width = 78 - indent;
    while (*text) {
        int n = (int)strlen(text);
        if (n > width) {
            n = width;
            while (n > 0 && text[n] != ' ') n--;
            if (n == 0) n = (int)strcspn(text, " ");
        }
        fprintf(out, "%*s%.*s\n", indent, "", n, text);
        text += n;
        while (*text == ' ') text++;
    }
}

static void print_key(const key_spec *k, FILE *out)
{
    char allowed[768];
    describe_allowed(k, allowed, sizeof allowed);
    if (k->flags & F_REQUIRED)
        fprintf(out, "  %-13s REQUIRED, e.g. %s = %s\n", k->key, k->key, k->def);
    else if (k->flags & F_DEFAULT_LR100)
        fprintf(out, "  %-13s default: lr / 100\n", k->key);
    else
        fprintf(out, "  %-13s default: %s\n", k->key, *k->def ? k->def : "(empty)");
    print_wrapped(out, 16, allowed);
    print_wrapped(out, 16, k->help);
}

void dpt_config_print_keys(FILE *out)
{
    fprintf(out, "Configuration keys (INI; change any with --set section.key=value, or a\n"
                 "key of a head the file defines with --set head.NAME.key=value):\n");
    for (int s = 0; s < N_SECTIONS; s++) {
        fprintf(out, "\n[%s]  %s\n", section_shown(sections[s].name), sections[s].help);
        for (int i = 0; i < N_KEYS; i++)
            if (strcmp(keys[i].section, sections[s].name) == 0) print_key(&keys[i], out);
    }
}

/* Markdown table cells: '|' would end the cell, a newline the row. */
static void print_cell(FILE *out, const char *text)
{
    fputs("| ", out);
    for (const char *c = text; *c; c++) {
        if (*c == '|') fputs("\\|", out);
        else if (*c == '\n') fputc(' ', out);
        else fputc(*c, out);
    }
    fputc(' ', out);
}

static const char *type_word(const key_spec *k)
{
    static const char *const words[] = {"string", "integer", "integer", "integer (64 bits)", "boolean",
                                        "real", "choice", "layer list", "label groups"};
    return words[k->type];
}

void dpt_config_print_keys_markdown(FILE *out)
{
    fprintf(out, "Generated by `dptrain help config --markdown` from the key table in src/cli/config.c "
                 "(tests/e2e_commands.sh checks that this copy matches it).\n");
    for (int s = 0; s < N_SECTIONS; s++) {
        fprintf(out, "\n**[%s]** %s\n\n", section_shown(sections[s].name), sections[s].help);
        fprintf(out, "| key | type | default | allowed values | meaning |\n|---|---|---|---|---|\n");
        for (int i = 0; i < N_KEYS; i++) {
            const key_spec *k = &keys[i];
            if (strcmp(k->section, sections[s].name) != 0) continue;
            char allowed[768], def[DPT_PATH_MAX + 16];
            describe_allowed(k, allowed, sizeof allowed);
            if (k->flags & F_REQUIRED) snprintf(def, sizeof def, "required (e.g. %s)", k->def);
            else if (k->flags & F_DEFAULT_LR100) snprintf(def, sizeof def, "lr / 100");
            else snprintf(def, sizeof def, "%s", *k->def ? k->def : "(empty)");
            char key[64];
            snprintf(key, sizeof key, "`%s`", k->key);
            print_cell(out, key);
            print_cell(out, type_word(k));
            print_cell(out, def);
            print_cell(out, allowed);
            print_cell(out, k->help);
            fputs("|\n", out);
        }
    }
}

void dpt_config_data_path(const dpt_config *cfg, const char *name, char *out, size_t out_size)
{
    if (!out || out_size == 0) return;
    if (!name) name = "";
    const char *dir = cfg ? cfg->data.dir : "";
    size_t n = strlen(dir);
    if (name[0] == '/' || n == 0)
        snprintf(out, out_size, "%s", name);
    else
        snprintf(out, out_size, "%s%s%s", dir, dir[n - 1] == '/' ? "" : "/", name);
}
