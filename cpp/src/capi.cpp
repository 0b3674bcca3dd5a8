// The C ABI: every entry point catches everything, returns a status and leaves a one-line
// message in a thread-local buffer for lredit_last_error().
#include <cstring>
#include <new>

#include "capi.h"
#include "errors.h"
#include "report.h"

namespace lredit {
namespace {

thread_local std::string last_error;

template <typename F>
lredit_status guarded(F&& body) {
  try {
    last_error.clear();
    body();
    return LREDIT_OK;
  } catch (const Error& e) {
    last_error = e.what();
    return static_cast<lredit_status>(e.status());
  } catch (const std::bad_alloc&) {
    last_error = "out of memory";
    return LREDIT_ERROR_INTERNAL;
  } catch (const std::exception& e) {
    last_error = std::string("internal error: ") + e.what();
    return LREDIT_ERROR_INTERNAL;
  } catch (...) {
    last_error = "internal error: unknown exception";
    return LREDIT_ERROR_INTERNAL;
  }
}

void require(bool ok, const char* what) {
  if (!ok) throw Error(Status::invalid_argument, what);
}

}  // namespace

void set_last_error(const std::string& message) { last_error = message; }

EditConfig config_from_options(const lredit_options& o) {
  require(o.struct_size == sizeof(lredit_options), "options.struct_size differs from this library's sizeof(lredit_options): call lredit_options_default first");
  EditConfig c;
  c.anchors = o.anchors;
  c.steps = o.steps;
  c.guidance = o.guidance;
  static const char* names[] = {"model", "pndm", "ddim", "euler", "dpmpp_2m"};
  require(o.scheduler >= LREDIT_SCHEDULER_MODEL && o.scheduler <= LREDIT_SCHEDULER_DPMPP_2M,
          "options.scheduler is not an lredit_scheduler value");
  c.scheduler = names[o.scheduler];
  c.seed = o.seed;
  c.paste_back = o.paste_back != 0;
  // A C caller may store any int in the enum field; read it as one (loading it as the C++ enum is UB).
  int32_t mode = 0;
  static_assert(sizeof(mode) == sizeof(o.region_mode), "lredit_region_mode is int-sized");
  std::memcpy(&mode, &o.region_mode, sizeof(mode));
  require(mode >= LREDIT_REGION_RGN && mode <= LREDIT_REGION_DEFAULT, "options.region_mode is not an lredit_region_mode value");
  if (mode != LREDIT_REGION_DEFAULT) c.regions = static_cast<RegionMode>(mode);
  c.prune = o.prune != 0;
  require(o.num_prune_fractions >= 0 && o.num_prune_fractions <= LREDIT_MAX_PRUNE_FRACTIONS,
          "options.num_prune_fractions is outside 0..LREDIT_MAX_PRUNE_FRACTIONS");
  c.prune_fractions.assign(o.prune_fractions, o.prune_fractions + o.num_prune_fractions);
  c.prune_keep = o.prune_keep;
  c.max_unet_batch = o.max_unet_batch;
  if (o.source_caption) c.source_caption = o.source_caption;
  c.distinct_anchors = o.distinct_anchors != 0;
  c.max_window = o.max_window;
  c.anchor_spacing = o.anchor_spacing;
  c.fix_anchor_axes = o.fix_anchor_axes != 0;
  c.fix_roi_scale = o.fix_roi_scale != 0;
  c.fix_rgn_layout = o.fix_rgn_layout != 0;
  c.dino_imagenet_norm = o.dino_imagenet_norm != 0;
  c.rank_alpha = o.rank_alpha;
  c.rank_beta = o.rank_beta;
  c.rank_softmax = o.rank_softmax != 0;
  c.rank_top_t2i = o.rank_top_t2i;
  if (o.prompt_template) c.prompt_template = o.prompt_template;
  if (o.negative_prompt) c.negative_prompt = o.negative_prompt;
  return c;
}

lredit_status open_editor(const char* bundle_dir, std::shared_ptr<Runner> runner, int verify, lredit_editor** editor) {
  return guarded([&] {
    require(editor != nullptr, "editor (the output pointer) is NULL");
    *editor = nullptr;
    require(bundle_dir != nullptr && *bundle_dir, "bundle_dir is NULL or empty");
    require(runner != nullptr, "runner is NULL");
    auto e = std::make_unique<lredit_editor>();
    e->bundle = std::make_shared<const Bundle>(open_bundle(bundle_dir, verify != 0));
    e->runner = std::move(runner);
    e->pipeline = std::make_unique<Pipeline>(e->bundle, e->runner);
    *editor = e.release();
  });
}

}  // namespace lredit

using lredit::guarded;
using lredit::require;

extern "C" {

void lredit_options_default(lredit_options* o) {
  if (o == nullptr) return;
  const lredit::EditConfig c;
  *o = lredit_options{};
  o->struct_size = sizeof(lredit_options);
  o->anchors = c.anchors;
  o->steps = c.steps;
  o->guidance = c.guidance;
  o->scheduler = LREDIT_SCHEDULER_MODEL;
  o->seed = c.seed;
  o->paste_back = c.paste_back;
  o->region_mode = LREDIT_REGION_DEFAULT;
  o->prune = c.prune;
  o->num_prune_fractions = static_cast<int32_t>(c.prune_fractions.size());
  for (size_t i = 0; i < c.prune_fractions.size(); ++i) o->prune_fractions[i] = c.prune_fractions[i];
  o->prune_keep = c.prune_keep;
  o->max_unet_batch = c.max_unet_batch;
  o->source_caption = nullptr;
  o->distinct_anchors = c.distinct_anchors;
  o->max_window = c.max_window;
  o->anchor_spacing = c.anchor_spacing;
  o->fix_anchor_axes = c.fix_anchor_axes;
  o->fix_roi_scale = c.fix_roi_scale;
  o->fix_rgn_layout = c.fix_rgn_layout;
  o->dino_imagenet_norm = c.dino_imagenet_norm;
  o->rank_alpha = static_cast<float>(c.rank_alpha);
  o->rank_beta = static_cast<float>(c.rank_beta);
  o->rank_softmax = c.rank_softmax;
  o->rank_top_t2i = c.rank_top_t2i;
  o->prompt_template = nullptr;
  o->negative_prompt = nullptr;
}

lredit_status lredit_open(const char* bundle_dir, const lredit_runner* runner, int verify, lredit_editor** editor) {
  std::shared_ptr<lredit::Runner> wrapped;
  const lredit_status st = guarded([&] {
    require(runner != nullptr, "runner is NULL");
    wrapped = lredit::make_callback_runner(*runner);
  });
  if (st != LREDIT_OK) {
    if (editor) *editor = nullptr;
    return st;
  }
  return lredit::open_editor(bundle_dir, std::move(wrapped), verify, editor);
}

void lredit_close(lredit_editor* editor) { delete editor; }

lredit_status lredit_edit(lredit_editor* editor, const uint8_t* rgb, int32_t width, int32_t height, size_t stride,
                          const char* prompt, const lredit_options* options, lredit_result** result) {
  return guarded([&] {
    require(result != nullptr, "result (the output pointer) is NULL");
    *result = nullptr;
    require(editor != nullptr, "editor is NULL");
    require(rgb != nullptr, "rgb (the image pixels) is NULL");
    require(prompt != nullptr, "prompt is NULL");
    lredit::check_size(width, height);
    if (stride == 0) stride = static_cast<size_t>(width) * 3;
    require(stride >= static_cast<size_t>(width) * 3, "stride is smaller than width * 3");
    lredit_options defaults;
    lredit_options_default(&defaults);
    const lredit::EditConfig cfg = lredit::config_from_options(options ? *options : defaults);
    lredit::Image img{width, height, 3, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
    for (int32_t y = 0; y < height; ++y) std::memcpy(&img.pixels[static_cast<size_t>(y) * width * 3], rgb + y * stride, static_cast<size_t>(width) * 3);
    auto out = std::make_unique<lredit_result>();
    out->result = editor->pipeline->edit(img, prompt, cfg);
    out->report = lredit::build_report(out->result, *editor->bundle, "<pixels>", "cpp/" + editor->runner->name()).dump(2) + "\n";
    *result = out.release();
  });
}

void lredit_result_free(lredit_result* result) { delete result; }

int32_t lredit_result_size(const lredit_result* r) { return r ? r->result.source.width : 0; }
int32_t lredit_result_num_candidates(const lredit_result* r) { return r ? static_cast<int32_t>(r->result.candidates.size()) : 0; }
int32_t lredit_result_chosen(const lredit_result* r) { return r ? r->result.chosen : -1; }

const uint8_t* lredit_result_image(const lredit_result* r, int32_t index) {
  if (r == nullptr) return nullptr;
  if (index == -2) return r->result.source.pixels.data();
  if (index == -1) index = r->result.chosen;
  if (index < 0 || index >= static_cast<int32_t>(r->result.candidates.size())) return nullptr;
  return r->result.candidates[index].pixels.data();
}

const char* lredit_result_report_json(const lredit_result* r) { return r ? r->report.c_str() : ""; }

const char* lredit_last_error(void) { return lredit::last_error.c_str(); }

const char* lredit_version(void) { return "0.1.0"; }

}  // extern "C"
