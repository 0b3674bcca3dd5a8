// The edit's report, laid out as lr-edit's report.json (engine/outputs.py build_report).
#pragma once

#include <string>

#include "bundle.h"
#include "pipeline.h"

namespace lredit {

ojson build_report(const EditResult& result, const Bundle& bundle, const std::string& image, const std::string& backend);
ojson config_report(const EditConfig& config, const Geometry& geometry);

}  // namespace lredit
