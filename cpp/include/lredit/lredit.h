/* lredit: mask-free text-driven image editing via learnable regions, the C ABI.
 *
 * One editor per bundle (lr-export's folder). The graphs run in a runner that the application
 * supplies as a callback table (its own inference stack) or one of the library's runners
 * (C++ API). Every call returns an lredit_status; on failure lredit_last_error() gives a
 * one-line message for the calling thread. Handles are not shared between threads while a call
 * on them runs; distinct handles may be used from distinct threads at once.
 */
#ifndef LREDIT_LREDIT_H
#define LREDIT_LREDIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LREDIT_VERSION_MAJOR 0
#define LREDIT_VERSION_MINOR 1
#define LREDIT_VERSION_PATCH 0

typedef enum lredit_status {
  LREDIT_OK = 0,
  LREDIT_ERROR_INVALID_ARGUMENT = 1, /* a bad argument: null pointer, empty prompt, image size */
  LREDIT_ERROR_BUNDLE = 2,           /* missing, corrupt, foreign, newer or incomplete bundle */
  LREDIT_ERROR_RUNNER = 3,           /* the runner failed or returned unexpected outputs */
  LREDIT_ERROR_NUMERICAL = 4,        /* NaN/Inf in a graph output */
  LREDIT_ERROR_IO = 5,               /* a file could not be read or written */
  LREDIT_ERROR_INTERNAL = 6
} lredit_status;

typedef enum lredit_dtype { LREDIT_DTYPE_F32 = 0, LREDIT_DTYPE_I64 = 1 } lredit_dtype;

/* A tensor the host hands to a runner (borrowed for the duration of the call). */
typedef struct lredit_tensor_view {
  const char* name;
  lredit_dtype dtype;
  size_t ndim;
  const int64_t* shape;
  const void* data; /* C order, host memory */
} lredit_tensor_view;

/* Where a runner puts a graph's outputs; lredit_outputs_put copies the data. */
typedef struct lredit_outputs lredit_outputs;
lredit_status lredit_outputs_put(lredit_outputs* outputs, const char* name, lredit_dtype dtype, size_t ndim,
                                 const int64_t* shape, const void* data);

/* An application's inference stack. `run` executes graph `graph` (dino, rgn, sd_text, unet,
 * vae_encoder, vae_decoder, clip_vision, clip_text) on the named inputs and puts every output
 * into `outputs`. It returns 0 on success; otherwise it writes a message (NUL-terminated, at
 * most message_size bytes) and returns non-zero. `release` (may be NULL) is called once when
 * the editor is closed. */
typedef struct lredit_runner {
  void* user;
  int (*run)(void* user, const char* graph, const lredit_tensor_view* inputs, size_t num_inputs,
             lredit_outputs* outputs, char* message, size_t message_size);
  void (*release)(void* user);
} lredit_runner;

typedef enum lredit_scheduler {
  LREDIT_SCHEDULER_MODEL = 0, /* the bundle's (PNDM for SD 1.x inpainting) */
  LREDIT_SCHEDULER_PNDM = 1,
  LREDIT_SCHEDULER_DDIM = 2,
  LREDIT_SCHEDULER_EULER = 3,
  LREDIT_SCHEDULER_DPMPP_2M = 4
} lredit_scheduler;

/* How boxes are chosen (Python's --regions). DEFAULT: search without an RGN checkpoint in the
 * bundle, rgn with one (rgn, with a warning, where the bundle's clip_vision lacks `tokens`).
 * RGN: the RGN's argmax, K inpaints. SEARCH: every (anchor, size) pair inpainted, each anchor
 * keeps its lowest-loss size (L = L_clip + L_str + L_dir), pruned mid-schedule unless prune = 0.
 * LEARN is Python-only: refused (LREDIT_ERROR_INVALID_ARGUMENT) with a message saying to train
 * with lr-train-rgn and ship the checkpoint. */
typedef enum lredit_region_mode {
  LREDIT_REGION_RGN = 0,
  LREDIT_REGION_SEARCH = 1,
  LREDIT_REGION_LEARN = 2,
  LREDIT_REGION_DEFAULT = 3
} lredit_region_mode;

#define LREDIT_MAX_PRUNE_FRACTIONS 8

/* One edit's settings; lredit_options_default fills the engine's defaults (the authors'
 * numbers, as Python's EditConfig). Geometry (working size, half-sizes, ROI size) comes from
 * the bundle. */
typedef struct lredit_options {
  uint32_t struct_size; /* sizeof(lredit_options), set by lredit_options_default */
  int32_t anchors;      /* K candidates, default 9 */
  int32_t steps;        /* denoising steps, default 50 */
  float guidance;       /* classifier-free guidance, default 7.5; <= 1 disables it */
  lredit_scheduler scheduler;
  uint64_t seed;
  int32_t paste_back; /* keep every pixel outside the chosen box */
  lredit_region_mode region_mode;
  int32_t distinct_anchors;   /* 1: K distinct top patches (engine); 0: the authors' choice */
  int32_t max_window;         /* the authors' border margin w for anchors when distinct_anchors = 0 (15) */
  int32_t anchor_spacing;     /* distinct anchors at least this many cells apart (Chebyshev; 4; 0 = top-K) */
  int32_t fix_anchor_axes;    /* 1: anchor (row, col) as (y, x) */
  int32_t fix_roi_scale;      /* 1: spatial scale 1 on cell boxes */
  int32_t fix_rgn_layout;     /* 1: each anchor's own M pooled maps */
  int32_t dino_imagenet_norm; /* 1: ImageNet mean/std before DINO */
  float rank_alpha;           /* S = alpha * t2i + beta * i2i, default 2 */
  float rank_beta;            /* default 1 */
  int32_t rank_softmax;       /* softmax over candidates, default 1 */
  int32_t rank_top_t2i;       /* winner among the top-N by t2i, default 3 (0 = all) */
  const char* prompt_template; /* NULL: "a high quality image of {prompt}." */
  const char* negative_prompt; /* NULL: "" */
  const char* source_caption;  /* T_roi of the search objective's L_dir; NULL or "": none (L_dir left out) */
  int32_t prune;               /* search: 1 successive halving at prune_fractions (default); 0 exact search */
  int32_t num_prune_fractions; /* entries of prune_fractions in use (default 3: 0.2, 0.3, 0.6) */
  double prune_fractions[LREDIT_MAX_PRUNE_FRACTIONS]; /* increasing shares of the schedule in (0, 1) */
  double prune_keep;           /* share of each anchor's live sizes kept at a prune, in (0, 1], default 0.5 */
  int32_t max_unet_batch;      /* UNet rows per call at most, below the bundle's profile (0 = the profile's) */
} lredit_options;

void lredit_options_default(lredit_options* options);

typedef struct lredit_editor lredit_editor;
typedef struct lredit_result lredit_result;

/* Open a bundle: reads manifest.json, refuses foreign, newer or incomplete bundles, checks every
 * file's sha256 when `verify` is non-zero. The runner table is copied. */
lredit_status lredit_open(const char* bundle_dir, const lredit_runner* runner, int verify, lredit_editor** editor);
void lredit_close(lredit_editor* editor);

/* Edit an 8-bit RGB image (rows of `stride` bytes, 0 = width * 3). */
lredit_status lredit_edit(lredit_editor* editor, const uint8_t* rgb, int32_t width, int32_t height, size_t stride,
                          const char* prompt, const lredit_options* options, lredit_result** result);
void lredit_result_free(lredit_result* result);

int32_t lredit_result_size(const lredit_result* result);       /* working size S */
int32_t lredit_result_num_candidates(const lredit_result* result);
int32_t lredit_result_chosen(const lredit_result* result);
/* S x S x 3 pixels of candidate `index`; -1 = the chosen one, -2 = the working source image. */
const uint8_t* lredit_result_image(const lredit_result* result, int32_t index);
/* The report (as lr-edit's report.json); valid until the result is freed. */
const char* lredit_result_report_json(const lredit_result* result);

/* The calling thread's last error message ("" if none). */
const char* lredit_last_error(void);
const char* lredit_version(void);

#ifdef __cplusplus
}
#endif

#endif /* LREDIT_LREDIT_H */
