#include "bundle.h"

#include <algorithm>
#include <filesystem>

#include "errors.h"
#include "npy.h"

namespace lredit {
namespace fs = std::filesystem;
namespace {

std::string display(const std::string& dir) {
  std::string s = fs::path(dir).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s.empty() ? "." : s;
}

// Python's repr() of a str, as the messages quote paths: 'text'.
std::string python_repr(const std::string& s) {
  const bool use_double = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  std::string out(1, use_double ? '"' : '\'');
  for (char c : s) {
    if (c == '\\' || (!use_double && c == '\'')) out.push_back('\\');
    out.push_back(c);
  }
  out.push_back(use_double ? '"' : '\'');
  return out;
}

std::string python_value(const ojson& v) {
  if (v.is_null()) return "None";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  return v.dump();
}

// engine's lredit.manifest.read_manifest: the file, its version, its fields, then completeness.
ojson read_manifest(const std::string& bundle) {
  const fs::path path = fs::path(bundle) / "manifest.json";
  if (!fs::is_regular_file(path))
    throw Error(Status::bundle, bundle + " is not an lredit bundle (no manifest.json); create one with lr-export --out " + bundle);
  ojson manifest;
  try {
    manifest = ojson::parse(npy::read_file(path.string()));
  } catch (const ojson::exception& exc) {
    throw Error(Status::bundle, path.string() + " is not valid JSON (" + exc.what() + "); re-run lr-export --out " + bundle);
  }
  if (!manifest.is_object())
    throw Error(Status::bundle, bundle + "/manifest.json holds a " + std::string(manifest.type_name()) + ", not a manifest");
  const ojson version = manifest.value("format_version", ojson());
  if (!version.is_number_integer() || version.get<int64_t>() > kFormatVersion)
    throw Error(Status::bundle, "bundle " + bundle + " has format version " + python_value(version) +
                                    "; this lredit reads up to " + std::to_string(kFormatVersion) +
                                    ": upgrade lredit or re-export the bundle with this version");
  return manifest;
}

void require_complete(const std::string& bundle, const ojson& manifest) {
  const ojson complete = manifest.value("complete", ojson());
  const bool truthy = complete.is_boolean() ? complete.get<bool>() : (complete.is_number() && complete.get<double>() != 0.0);
  if (!truthy)
    throw Error(Status::bundle, "bundle " + bundle +
                                    " is incomplete (an export was interrupted or failed parity): re-run lr-export --out " + bundle);
}

// lredit.bundle.confined: a manifest path stays inside the bundle, symlinks included.
fs::path confined(const std::string& bundle, const std::string& rel) {
  const fs::path pure(rel);
  bool climbs = false;
  for (const auto& part : pure) climbs = climbs || part == "..";
  if (rel.empty() || pure.is_absolute() || climbs || rel.find('\\') != std::string::npos)
    throw Error(Status::bundle, "bundle " + bundle + ": the manifest names " + python_repr(rel) +
                                    ", which is not a path inside the bundle; refusing to load it (re-export the bundle with lr-export)");
  const fs::path path = fs::path(bundle) / rel;
  const fs::path root = fs::weakly_canonical(bundle), resolved = fs::weakly_canonical(path);
  const auto [r, p] = std::mismatch(root.begin(), root.end(), resolved.begin(), resolved.end());
  if (r != root.end())
    throw Error(Status::bundle, "bundle " + bundle + ": " + python_repr(rel) + " resolves to " + resolved.string() +
                                    ", outside the bundle (a symlink?); refusing to load it");
  return path;
}

void confine_all(const std::string& bundle, const ojson& manifest) {
  const ojson assets = manifest.value("assets", ojson::object());  // a local: items() refers to it
  for (const auto& [rel, digest] : assets.items()) confined(bundle, rel);
  for (const auto& [name, entry] : manifest.at("graphs").items()) {
    confined(bundle, entry.at("file").get<std::string>());
    for (const auto& [rel, digest] : entry.at("files").items()) confined(bundle, rel);
    if (entry.contains("ort_file") && entry["ort_file"].is_string()) confined(bundle, entry["ort_file"].get<std::string>());
    if (entry.contains("engine") && entry["engine"].is_object()) confined(bundle, entry["engine"].at("file").get<std::string>());
  }
}

void require_graphs(const std::string& bundle, const ojson& manifest) {
  std::vector<std::string> missing;
  const ojson& graphs = manifest.at("graphs");
  for (const auto& name : kGraphNames)
    if (!graphs.contains(name)) missing.push_back(name);
  if (missing.empty()) return;
  std::string list = "[", args;
  for (size_t i = 0; i < missing.size(); ++i) {
    list += (i ? ", '" : "'") + missing[i] + "'";
    args += (i ? " " : "") + missing[i];
  }
  throw Error(Status::bundle, "bundle " + bundle + " lacks the graphs " + list + "]; export them with lr-export --graphs " + args);
}

void verify_files(const std::string& bundle, const ojson& files) {
  for (const auto& [rel, digest] : files.items()) {
    const std::string path = confined(bundle, rel).string();
    if (!fs::is_regular_file(path))
      throw Error(Status::bundle, "bundle file missing: " + path + "; re-run lr-export --out " + bundle);
    if (bridge::sha256_file_hex(path) != digest.get<std::string>())
      throw Error(Status::bundle, "bundle file corrupt (sha256 mismatch): " + path + "; re-run lr-export --out " + bundle);
  }
}

std::map<std::string, int64_t> profile_batch_limits(const ojson& graphs) {
  std::map<std::string, int64_t> limits;
  for (const auto& [name, entry] : graphs.items()) {
    std::vector<int64_t> maxima, mins;
    const ojson profile = entry.value("profile", ojson::object());  // a local: items() refers to it
    for (const auto& [input, shape] : profile.items()) {
      if (shape.contains("max") && !shape["max"].empty()) maxima.push_back(shape["max"][0].get<int64_t>());
      if (shape.contains("min") && !shape["min"].empty()) mins.push_back(shape["min"][0].get<int64_t>());
    }
    if (!maxima.empty() && maxima != mins) limits[name] = *std::min_element(maxima.begin(), maxima.end());
  }
  return limits;
}

bool has_output(const ojson& entry, const std::string& name) {
  const ojson outputs = entry.value("outputs", ojson::array());
  for (const auto& out : outputs)
    if (out.value("name", std::string()) == name) return true;
  return false;
}

Geometry read_geometry(const ojson& pipe) {
  Geometry g;
  g.working_size = pipe.at("working_size").get<int>();
  g.dino_size = pipe.at("dino_size").get<int>();
  g.roi_size = pipe.at("roi_size").get<int>();
  g.proj_channels = pipe.at("proj_channels").get<int>();
  g.latent_channels = pipe.at("latent_channels").get<int>();
  g.vae_scale_factor = pipe.at("vae_scale_factor").get<int>();
  g.clip_image_size = pipe.at("clip_image_size").get<int>();
  g.max_candidates = pipe.value("max_candidates", 16);
  g.half_sizes = pipe.at("half_sizes").get<std::vector<int>>();
  return g;
}

}  // namespace

Bundle open_bundle(const std::string& dir, bool verify) {
  Bundle b;
  b.dir = display(dir);
  b.manifest = read_manifest(b.dir);
  try {
    b.geometry = read_geometry(b.manifest.at("pipeline"));
    const std::string editor = b.manifest.at("pipeline").value("editor", std::string("inpaint"));
    if (editor != "inpaint")
      throw Error(Status::bundle, "bundle " + b.dir + " was exported for the '" + editor + "' editor (a text-to-image UNet); " +
                                      "this host runs inpainting bundles only: edit it with lr-edit --bundle " + b.dir);
    b.scheduler_config = b.manifest.at("scheduler").at("config");
    b.alphas_cumprod = b.manifest.at("scheduler").at("alphas_cumprod").get<std::vector<float>>();
    b.random_weights = b.manifest.at("models").value("random_weights", false);
    const ojson families = b.manifest.at("models").value("families", ojson::object());
    const ojson rgn = families.value("rgn", ojson("seeded"));
    b.has_rgn_checkpoint = (rgn.is_string() ? rgn.get<std::string>() : rgn.dump()).rfind("seeded", 0) != 0;
    b.batch_limits = profile_batch_limits(b.manifest.at("graphs"));
    confine_all(b.dir, b.manifest);
  } catch (const ojson::exception& exc) {
    throw Error(Status::bundle, "bundle " + b.dir + ": malformed manifest (" + exc.what() + "); re-run lr-export --out " + b.dir);
  }
  require_complete(b.dir, b.manifest);
  require_graphs(b.dir, b.manifest);
  b.clip_vision_tokens = has_output(b.manifest["graphs"]["clip_vision"], "tokens");
  if (verify) {
    for (const auto& name : kGraphNames) verify_files(b.dir, b.manifest.at("graphs").at(name).at("files"));
    verify_files(b.dir, b.manifest.at("assets"));
  }
  TensorMap proj = npy::read_npz(confined(b.dir, "rgn_projection.npz").string());
  if (!proj.count("weight") || !proj.count("bias"))
    throw Error(Status::bundle, "bundle " + b.dir + ": rgn_projection.npz lacks weight or bias; re-run lr-export --out " + b.dir);
  b.projection_weight = proj["weight"];
  b.projection_bias = proj["bias"];
  b.clip_tokenizer = bridge::load_tokenizer(confined(b.dir, "tokenizer/clip").string());
  b.sd_tokenizer = bridge::load_tokenizer(confined(b.dir, "tokenizer/sd").string());
  return b;
}

}  // namespace lredit
