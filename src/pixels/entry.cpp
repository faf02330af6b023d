// The plugin's one exported symbol (radguard-pixels.so): the table of its functions, handed
// only to an executable of the same build (the stamp). Everything else in the plugin is
// compiled with hidden visibility, so its calls between its own functions never reach the
// executable's forwarding definitions of the same names (src/pixels/stub.cpp).
#include <cstring>

#include "pixels/api.hpp"
#include "pixels_stamp.hpp"

namespace {

using namespace radguard;

const pixels::Api& table() {
  static const pixels::Api api = [] {
    pixels::Api a;
    a.render_gray8 = &redact::render_gray8;
    a.read_words = &redact::read_words;
    a.uncovered_text_candidates = &redact::uncovered_text_candidates;
    a.read_candidate = &redact::read_candidate;
    a.read_region = &redact::read_region;
    a.ink_mask = &redact::ink_mask;
    a.reread = &redact::reread;
    a.text_detector_model = &redact::text_detector_model;
    a.detect_text = &redact::detect_text;
    a.confirm_small_text = &redact::confirm_small_text;
    a.judge_region = &redact::judge_region;
    a.find_text = &redact::find_text;
    a.text_left_behind = &redact::text_left_behind;
    a.consensus = &redact::consensus;
    a.memo_find = [](const redact::RegionMemo& memo, const redact::Gray8& image,
                     const redact::Box& box) { return memo.find(image, box); };
    a.memo_add = [](redact::RegionMemo& memo, const redact::Gray8& image, const redact::Box& box,
                    redact::RegionVerdict verdict) { memo.add(image, box, std::move(verdict)); };
    a.outcome_status_name = &redact::outcome_status_name;
    a.report_count = [](const redact::RedactRunReport& report, redact::OutcomeStatus status) {
      return report.count(status);
    };
    a.report_exit_code = [](const redact::RedactRunReport& report) { return report.exit_code(); };
    a.run_redact = &redact::run_redact;
    a.report_json = &redact::report_json;
    a.report_text = &redact::report_text;
    a.detect_faces = &deface::detect_faces;
    a.write_png = &deface::write_png;
    a.forget_detector_maps = &redact::forget_detector_maps;
    return a;
  }();
  return api;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const radguard::pixels::Api* radguard_pixels_v1(
    const char* stamp) {
  if (stamp == nullptr || std::strcmp(stamp, radguard::pixels::kPixelsStamp) != 0) return nullptr;
  return &table();
}
