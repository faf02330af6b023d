#include "net/query_service.hpp"

#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcelem.h>
#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/ofstd/ofstd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "dicom/structure_check.hpp"

namespace radguard::net {

namespace {

// The SOP classes of each command: a C-FIND is served on a FIND model's context only, a C-MOVE
// on a MOVE model's.
const std::vector<std::string>& find_sop_classes() {
  static const std::vector<std::string> classes = {
      UID_FINDPatientRootQueryRetrieveInformationModel,
      UID_FINDStudyRootQueryRetrieveInformationModel,
  };
  return classes;
}
const std::vector<std::string>& move_sop_classes() {
  static const std::vector<std::string> classes = {
      UID_MOVEPatientRootQueryRetrieveInformationModel,
      UID_MOVEStudyRootQueryRetrieveInformationModel,
  };
  return classes;
}

}  // namespace

const std::vector<std::string>& query_sop_classes() {
  static const std::vector<std::string> classes = [] {
    std::vector<std::string> all = find_sop_classes();
    all.insert(all.end(), move_sop_classes().begin(), move_sop_classes().end());
    return all;
  }();
  return classes;
}

const char* level_name(QueryLevel level) {
  switch (level) {
    case QueryLevel::patient:
      return "PATIENT";
    case QueryLevel::study:
      return "STUDY";
    case QueryLevel::series:
      return "SERIES";
    case QueryLevel::image:
      return "IMAGE";
  }
  return "STUDY";
}

namespace detail {

OFCondition next_pdv(const Channel& channel, DUL_PDV& pdv) {
  OFCondition cond = DUL_NextPDV(&channel.assoc->DULassociation, &pdv);
  if (cond.good()) return cond;
  const bool blocking = channel.blocking == DIMSE_BLOCKING;
  if (!blocking && !ASC_dataWaiting(channel.assoc, channel.timeout_s)) return DIMSE_NODATAAVAILABLE;
  cond = DUL_ReadPDVs(&channel.assoc->DULassociation, nullptr, blocking ? DUL_BLOCK : DUL_NOBLOCK,
                      channel.timeout_s);
  if (cond != DUL_PDATAPDUARRIVED) return cond.bad() ? cond : DIMSE_READPDVFAILED;
  return DUL_NextPDV(&channel.assoc->DULassociation, &pdv);
}

namespace {

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\0')) text.pop_back();
  while (!text.empty() && text.front() == ' ') text.erase(text.begin());
  return text;
}

QueryModel model_of(const char* sop_class) {
  const std::string_view uid(sop_class);
  return uid == UID_FINDPatientRootQueryRetrieveInformationModel ||
                 uid == UID_MOVEPatientRootQueryRetrieveInformationModel
             ? QueryModel::patient_root
             : QueryModel::study_root;
}

// A key a query may hold: an attribute below the pixel data (group 7FE0 and beyond are bulk
// data, never matched), with a bounded value and number of values.
Status check_key(DcmElement& element) {
  if (element.getTag().getGroup() >= 0x7FE0)
    return fail(ErrorCode::usage, "the identifier holds a key that is not a query attribute");
  if (element.getLength() > kMaxKeyValueBytes || element.getVM() > kMaxKeyValues)
    return fail(ErrorCode::usage, "a key's value is too long or has too many values");
  return {};
}

// Counts one Q/R operation in flight while it lives; `admitted` is false when the service's
// bound was already reached (nothing is counted then).
class InFlight {
 public:
  explicit InFlight(const QueryService& service) : active_(service.active) {
    const std::size_t before = active_->fetch_add(1);
    admitted_ = service.max_concurrent == 0 || before < service.max_concurrent;
    if (!admitted_) active_->fetch_sub(1);
  }
  ~InFlight() {
    if (admitted_) active_->fetch_sub(1);
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  [[nodiscard]] bool admitted() const { return admitted_; }

 private:
  std::shared_ptr<std::atomic<std::size_t>> active_;
  bool admitted_ = false;
};

// The identifier as plain keys. Fails with ErrorCode::usage: no level, or one the model does
// not have (Study Root has no PATIENT level).
Result<QueryRequest> read_request(DcmDataset* identifier, QueryModel model,
                                  const std::string& calling_ae) {
  if (identifier == nullptr) return fail(ErrorCode::usage, "the request has no identifier");
  // (Its bytes were bounded as they arrived: receive_identifier.)
  if (identifier->card() > kMaxQueryKeys)
    return fail(ErrorCode::usage, "the identifier holds too many keys");
  QueryRequest request;
  request.calling_ae = calling_ae;
  request.model = model;
  bool has_level = false;
  for (unsigned long i = 0; i < identifier->card(); ++i) {
    DcmElement* element = identifier->getElement(i);
    if (element == nullptr) continue;
    const DcmTagKey key = element->getTag();
    OFString value;
    if (key == DCM_QueryRetrieveLevel) {
      (void)element->getOFStringArray(value);
      const std::string level = trimmed(value.c_str());
      has_level = true;
      if (level == "PATIENT" && model == QueryModel::patient_root) {
        request.level = QueryLevel::patient;
      } else if (level == "STUDY") {
        request.level = QueryLevel::study;
      } else if (level == "SERIES") {
        request.level = QueryLevel::series;
      } else if (level == "IMAGE") {
        request.level = QueryLevel::image;
      } else {
        return fail(ErrorCode::usage, "the Query/Retrieve Level is not one of the model's");
      }
      continue;
    }
    // Sequence matching is not offered: a sequence key is neither matched nor returned.
    if (element->ident() == EVR_SQ || key.getGroup() == 0x0002) continue;
    if (auto bounded = check_key(*element); !bounded) return std::unexpected(bounded.error());
    if (element->getLength() > 0 && element->getOFStringArray(value).bad()) continue;
    request.keys.push_back(
        {(std::uint32_t{key.getGroup()} << 16) | key.getElement(), value.c_str()});
  }
  if (!has_level) return fail(ErrorCode::usage, "the identifier has no Query/Retrieve Level");
  return request;
}

// A match as an answer's identifier: the level, then each key whose VR the dictionary knows.
std::unique_ptr<DcmDataset> answer_identifier(const QueryMatch& match, QueryLevel level) {
  auto identifier = std::make_unique<DcmDataset>();
  (void)identifier->putAndInsertOFStringArray(DCM_QueryRetrieveLevel, level_name(level));
  for (const QueryKey& key : match) {
    const DcmTag tag(static_cast<Uint16>(key.tag >> 16), static_cast<Uint16>(key.tag & 0xFFFF));
    const DcmEVR vr = tag.getEVR();
    if (vr == EVR_UNKNOWN || vr == EVR_UN || vr == EVR_SQ) continue;
    (void)identifier->putAndInsertOFStringArray(tag, key.value.c_str());
  }
  return identifier;
}

std::uint16_t status_for(const Error& error) {
  switch (error.code) {
    case ErrorCode::usage:
      return kStatusIdentifierMismatch;
    case ErrorCode::not_found:
      return kStatusMoveDestinationUnknown;
    default:
      return kStatusUnableToProcess;
  }
}

// How many of the channel's timeouts a whole identifier may take to arrive.
constexpr int kIdentifierTimeouts = 2;

// How an identifier's bytes arrived.
enum class Arrival : std::uint8_t {
  whole,          // up to the fragment marked last, within kMaxIdentifierBytes
  too_large,      // more than kMaxIdentifierBytes: reading stopped there, the rest is unread
  too_slow,       // not whole within kIdentifierTimeouts of the channel's timeout: rest unread
  other_context,  // whole, but (partly) on another presentation context than its command
};

// Reads an identifier's fragments as bytes, holding at most kMaxIdentifierBytes. DCMTK's
// DIMSE_receiveDataSetInMemory parses and holds whatever the peer sends until its last
// fragment: a hostile identifier cost memory bounded only by the DIMSE timeout between
// fragments. Returns a bad condition when the association broke (or a command came instead).
OFCondition receive_identifier(const Channel& channel, std::vector<std::uint8_t>& bytes,
                               Arrival& arrival) {
  arrival = Arrival::whole;
  // A bounded identifier needs far less than this; no allowance grows with its size (the
  // size is bounded).
  const ArrivalDeadline deadline(std::chrono::seconds(kIdentifierTimeouts * std::max(channel.timeout_s, 1)), 0);
  for (;;) {
    if (deadline.passed(bytes.size())) {
      arrival = Arrival::too_slow;
      return EC_Normal;
    }
    DUL_PDV pdv{};
    if (const OFCondition cond = next_pdv(channel, pdv); cond.bad()) return cond;
    if (pdv.pdvType != DUL_DATASETPDV) return DIMSE_UNEXPECTEDPDVTYPE;
    if (pdv.presentationContextID != channel.pres) arrival = Arrival::other_context;
    if (pdv.fragmentLength > kMaxIdentifierBytes - bytes.size()) {
      arrival = Arrival::too_large;
      return EC_Normal;
    }
    const auto* data = static_cast<const std::uint8_t*>(pdv.data);
    bytes.insert(bytes.end(), data, data + pdv.fragmentLength);
    if (pdv.lastPDV) return EC_Normal;
  }
}

// The identifier's bytes as a data set, in the transfer syntax of the request's presentation
// context, after the structure check every file gets before DCMTK reads it (nesting that
// DCMTK's recursive reader would follow on the pool thread's stack). Fails with
// ErrorCode::usage (answered 0xA900).
Result<std::unique_ptr<DcmDataset>> parse_identifier(const Channel& channel,
                                                     std::span<const std::uint8_t> bytes) {
  T_ASC_PresentationContext context{};
  if (ASC_findAcceptedPresentationContext(channel.assoc->params, channel.pres, &context).bad())
    return fail(ErrorCode::usage, "the request came on no accepted presentation context");
  const DcmXfer xfer(context.acceptedTransferSyntax);
  // Checked in the encoding DCMTK will read, never the check's own guess: a guess that differs
  // would pass nesting the check never saw. A deflated identifier is not inflated here.
  if (xfer.getStreamCompression() != ESC_none)
    return fail(ErrorCode::usage, "a deflated identifier is not accepted");
  const dicom::FileLayout layout = !xfer.isExplicitVR() ? dicom::FileLayout::raw_implicit_little
                                   : xfer.isBigEndian() ? dicom::FileLayout::raw_explicit_big
                                                        : dicom::FileLayout::raw_explicit_little;
  if (!dicom::check_structure(bytes, layout))
    return fail(ErrorCode::usage, "the identifier's structure is refused");
  const E_TransferSyntax syntax = xfer.getXfer();
  auto identifier = std::make_unique<DcmDataset>();
  DcmInputBufferStream stream;
  stream.setBuffer(bytes.data(), static_cast<offile_off_t>(bytes.size()));
  stream.setEos();
  identifier->transferInit();
  const OFCondition read = identifier->read(stream, syntax);
  identifier->transferEnd();
  stream.releaseBuffer();
  if (read.bad()) return fail(ErrorCode::usage, "the identifier cannot be parsed");
  return identifier;
}

OFCondition send_find(const Channel& channel, const T_DIMSE_C_FindRQ& request, std::uint16_t status,
                      DcmDataset* identifier) {
  T_DIMSE_C_FindRSP response{};
  response.MessageIDBeingRespondedTo = request.MessageID;
  OFStandard::strlcpy(response.AffectedSOPClassUID, request.AffectedSOPClassUID,
                      sizeof response.AffectedSOPClassUID);
  response.opts = O_FIND_AFFECTEDSOPCLASSUID;
  response.DimseStatus = status;
  response.DataSetType = identifier != nullptr ? DIMSE_DATASET_PRESENT : DIMSE_DATASET_NULL;
  return DIMSE_sendFindResponse(channel.assoc, channel.pres, &request, &response, identifier,
                                nullptr);
}

struct MoveCounts {
  std::size_t remaining = 0, completed = 0, failed = 0, warnings = 0;

  // One sub-operation answered with `status`.
  void record(std::uint16_t status) {
    --remaining;
    if (status == kStatusSuccess) {
      ++completed;
    } else if (store_succeeded(status)) {
      ++warnings;
    } else {
      ++failed;
    }
  }
};

Uint16 clamp16(std::size_t n) { return static_cast<Uint16>(std::min<std::size_t>(n, 0xFFFF)); }

OFCondition send_move(const Channel& channel, const T_DIMSE_C_MoveRQ& request, std::uint16_t status,
                      const MoveCounts& counts) {
  T_DIMSE_C_MoveRSP response{};
  response.MessageIDBeingRespondedTo = request.MessageID;
  OFStandard::strlcpy(response.AffectedSOPClassUID, request.AffectedSOPClassUID,
                      sizeof response.AffectedSOPClassUID);
  response.DimseStatus = status;
  response.DataSetType = DIMSE_DATASET_NULL;
  response.NumberOfRemainingSubOperations = clamp16(counts.remaining);
  response.NumberOfCompletedSubOperations = clamp16(counts.completed);
  response.NumberOfFailedSubOperations = clamp16(counts.failed);
  response.NumberOfWarningSubOperations = clamp16(counts.warnings);
  response.opts = O_MOVE_AFFECTEDSOPCLASSUID | O_MOVE_NUMBEROFCOMPLETEDSUBOPERATIONS |
                  O_MOVE_NUMBEROFFAILEDSUBOPERATIONS | O_MOVE_NUMBEROFWARNINGSUBOPERATIONS;
  // Remaining sub-operations are given with pending answers only (PS3.4 C.4.2.1.5).
  if (status == kStatusPending) response.opts |= O_MOVE_NUMBEROFREMAININGSUBOPERATIONS;
  return DIMSE_sendMoveResponse(channel.assoc, channel.pres, &request, &response, nullptr, nullptr);
}

// Ends an association whose request's identifier was too large: DcmSCP aborts on a bad
// condition from the command handler.
const OFConditionConst kIdentifierTooLarge = {
    OFM_dcmnet, DIMSEC_RECEIVEFAILED, OF_error, "the identifier is larger than radguard accepts"};

// What both services do before their handler runs: receive the identifier (bounded), admit the
// request within the concurrency bound (held until `handle` returns) and parse the keys.
// A request that is not admitted or not understood gets `refuse(status)`; one whose identifier
// is too large gets it too, then the association is aborted.
template <typename Request, typename Refuse, typename Handle>
OFCondition with_request(const Channel& channel, const Request& request,
                         const std::vector<std::string>& allowed_classes,
                         const QueryService& service, std::uint16_t busy_status,
                         const Refuse& refuse, const Handle& handle) {
  std::vector<std::uint8_t> bytes;
  Arrival arrival = Arrival::whole;
  if (request.DataSetType != DIMSE_DATASET_NULL) {
    if (const OFCondition cond = receive_identifier(channel, bytes, arrival); cond.bad())
      return cond;
    if (arrival == Arrival::too_large || arrival == Arrival::too_slow) {
      const std::string why = arrival == Arrival::too_large
                                  ? "its identifier is over " +
                                        std::to_string(kMaxIdentifierBytes) + " bytes"
                                  : "its identifier did not arrive in time";
      if (channel.note)
        channel.note("refused a query from " + channel.calling_ae + ": " + why +
                     "; association aborted");
      (void)refuse(kStatusIdentifierMismatch);
      return kIdentifierTooLarge;
    }
  }
  // PS3.7 9.1: a C-FIND on a storage context (or a C-MOVE on a FIND model's) is not served.
  if (!context_serves(channel, request.AffectedSOPClassUID, allowed_classes)) {
    if (channel.note)
      channel.note("refused a query from " + channel.calling_ae +
                   ": it came on a presentation context of another SOP class");
    return refuse(kStatusSopClassNotSupported);
  }
  const InFlight in_flight(service);
  if (!in_flight.admitted()) return refuse(busy_status);
  if (arrival == Arrival::other_context) return refuse(kStatusUnableToProcess);
  std::unique_ptr<DcmDataset> identifier;
  if (request.DataSetType != DIMSE_DATASET_NULL) {
    auto parsed = parse_identifier(channel, bytes);
    if (!parsed) return refuse(status_for(parsed.error()));
    identifier = std::move(*parsed);
  }
  const auto parsed =
      read_request(identifier.get(), model_of(request.AffectedSOPClassUID), channel.calling_ae);
  if (!parsed) return refuse(status_for(parsed.error()));
  return handle(*parsed);
}

// The find handler's matches as pending answers, then the final status.
OFCondition answer_find(const Channel& channel, const T_DIMSE_C_FindRQ& request,
                        const QueryService& service, const QueryRequest& parsed) {
  Result<std::vector<QueryMatch>> matches = fail(ErrorCode::internal, "no find handler");
  try {
    if (service.find) matches = service.find(parsed);
  } catch (const std::exception&) {
    matches = fail(ErrorCode::internal, "the find handler failed");
  }
  if (!matches) return send_find(channel, request, status_for(matches.error()), nullptr);
  const std::size_t answered = std::min(matches->size(), kMaxFindMatches);
  for (std::size_t i = 0; i < answered; ++i) {
    const auto answer = answer_identifier((*matches)[i], parsed.level);
    if (OFCondition cond = send_find(channel, request, kStatusPending, answer.get()); cond.bad())
      return cond;
  }
  // More matches than answered: the querier learns the list is incomplete (narrow the keys).
  return send_find(channel, request,
                   matches->size() > answered ? kStatusFindOutOfResources : kStatusSuccess,
                   nullptr);
}

// Runs the move handler's plan as C-STORE sub-operations, answering pending counts.
OFCondition answer_move(const Channel& channel, const T_DIMSE_C_MoveRQ& request,
                        const QueryService& service, const QueryRequest& parsed) {
  MoveCounts counts;
  Result<MovePlan> plan = fail(ErrorCode::internal, "no move handler");
  try {
    if (service.move) plan = service.move(parsed, trimmed(request.MoveDestination));
  } catch (const std::exception&) {
    plan = fail(ErrorCode::internal, "the move handler failed");
  }
  if (!plan) return send_move(channel, request, status_for(plan.error()), counts);
  if (plan->files.empty()) return send_move(channel, request, kStatusSuccess, counts);
  counts.remaining = plan->files.size();
  // A pending answer after each sub-operation; a broken association with the mover ends the
  // sends too (the answer could not be given).
  OFCondition broken = EC_Normal;
  auto statuses = store_files(plan->destination, service.ae_title, plan->files,
                              service.store_timeout_s, [&](std::size_t, std::uint16_t status) {
                                counts.record(status);
                                if (broken.good() && counts.remaining > 0)
                                  broken = send_move(channel, request, kStatusPending, counts);
                              });
  if (broken.bad()) return broken;
  if (!statuses) {
    // No association with the destination: nothing was sent.
    counts = MoveCounts{0, 0, plan->files.size(), 0};
    return send_move(channel, request, kStatusSubOperationsRefused, counts);
  }
  // Files the destination never answered for (no accepted context, or the association broke).
  counts.failed += counts.remaining;
  counts.remaining = 0;
  const std::uint16_t last =
      counts.failed > 0 || counts.warnings > 0 ? kStatusSubOperationsFailed : kStatusSuccess;
  return send_move(channel, request, last, counts);
}

}  // namespace

bool context_is_for(const Channel& channel, const char* affected_sop_class) {
  return trimmed(affected_sop_class) == channel.abstract_syntax;
}

bool context_serves(const Channel& channel, const char* affected_sop_class,
                    const std::vector<std::string>& allowed) {
  return context_is_for(channel, affected_sop_class) &&
         std::ranges::find(allowed, channel.abstract_syntax) != allowed.end();
}

OFCondition serve_find(const Channel& channel, const T_DIMSE_C_FindRQ& request,
                       const QueryService& service) {
  const auto refuse = [&](std::uint16_t status) {
    return send_find(channel, request, status, nullptr);
  };
  return with_request(
      channel, request, find_sop_classes(), service, kStatusFindOutOfResources, refuse,
      [&](const QueryRequest& parsed) { return answer_find(channel, request, service, parsed); });
}

OFCondition serve_move(const Channel& channel, const T_DIMSE_C_MoveRQ& request,
                       const QueryService& service) {
  const auto refuse = [&](std::uint16_t status) {
    return send_move(channel, request, status, MoveCounts{});
  };
  return with_request(
      channel, request, move_sop_classes(), service, kStatusMoveOutOfResources, refuse,
      [&](const QueryRequest& parsed) { return answer_move(channel, request, service, parsed); });
}

}  // namespace detail
}  // namespace radguard::net
