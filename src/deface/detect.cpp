// The only file that sees OpenCV: its exceptions stop here and become Errors.
#include <algorithm>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "core/atomic_file.hpp"
#include "deface/deface.hpp"

namespace radguard::deface {

namespace {

struct Cascade {
  const char* stem;
  bool profile;
  // Least last-stage margin (levelWeight) that counts as a face. The default cascade also
  // fires weakly (1-2) on the cut surface of a defaced head and on the field-of-view edge;
  // intact heads score above 2.5 on it (see docs/benchmarks.md (Defacing)).
  double min_score;
};

constexpr Cascade kCascades[] = {
    {"haarcascade_frontalface_alt2", false, -1e9},
    {"haarcascade_frontalface_default", false, 2.2},
    {"haarcascade_profileface", true, -1e9},
};

constexpr int kMinNeighbours = 3;

Detection run_cascade(cv::CascadeClassifier& classifier, const cv::Mat& gray,
                      const std::string& view, const char* stem) {
  Detection d;
  d.view = view;
  d.cascade = stem;
  std::vector<cv::Rect> faces;
  std::vector<int> levels;
  std::vector<double> weights;
  // Faces in the renderings are a large part of the picture; ignoring small windows avoids
  // texture false positives on the cut surface.
  const int min_side = std::max(24, std::min(gray.cols, gray.rows) / 5);
  classifier.detectMultiScale(gray, faces, levels, weights, 1.05, kMinNeighbours, 0,
                              cv::Size(min_side, min_side), cv::Size(), true);
  d.faces = static_cast<int>(faces.size());
  if (!weights.empty() && !faces.empty())
    d.best_score = *std::max_element(weights.begin(), weights.end());
  return d;
}

}  // namespace

Result<FaceCheck> detect_faces(const std::vector<Rendering>& renderings,
                               const std::filesystem::path& cascade_dir) {
  try {
    FaceCheck check;
    for (const Cascade& c : kCascades) {
      const auto file = cascade_dir / (std::string(c.stem) + ".xml");
      cv::CascadeClassifier classifier;
      if (!classifier.load(file.string()))
        return fail(ErrorCode::io,
                    file.string() + ": cannot load the face cascade (is opencv-data installed?)");
      for (const Rendering& r : renderings) {
        const bool side = r.view.find("70") != std::string::npos;
        if (side != c.profile) continue;
        cv::Mat gray(r.image.height, r.image.width, CV_8UC1,
                     const_cast<std::uint8_t*>(r.image.pixels.data()));
        cv::Mat equalized;
        cv::equalizeHist(gray, equalized);
        // The profile cascade knows one facing direction only; the mirror covers the other.
        if (c.profile && r.view.find('-') != std::string::npos) cv::flip(equalized, equalized, 1);
        Detection d = run_cascade(classifier, equalized, r.view, c.stem);
        d.counted = d.faces > 0 && d.best_score >= c.min_score;
        if (d.counted) check.face_found = true;
        check.detections.push_back(std::move(d));
      }
    }
    return check;
  } catch (const cv::Exception& e) {
    return fail(ErrorCode::internal, std::string("OpenCV: ") + e.what());
  }
}

Status write_png(const std::filesystem::path& path, const Image& image) {
  try {
    cv::Mat gray(image.height, image.width, CV_8UC1,
                 const_cast<std::uint8_t*>(image.pixels.data()));
    std::vector<uchar> bytes;
    if (!cv::imencode(".png", gray, bytes)) return fail(ErrorCode::internal, "PNG encoding failed");
    using std::filesystem::perms;
    return write_file_atomically(
        path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
        perms::owner_read | perms::owner_write | perms::group_read | perms::others_read);
  } catch (const cv::Exception& e) {
    return fail(ErrorCode::internal, std::string("OpenCV: ") + e.what());
  }
}

}  // namespace radguard::deface
