#pragma once
// Internal to src/net: the C-FIND and C-MOVE exchanges of a Query/Retrieve SCP (query.hpp), on
// an association the StoreServer's pool serves (dimse.cpp hands the requests over). Holds DCMTK
// types; include only from src/net.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmnet/assoc.h>
#include <dcmtk/dcmnet/dimse.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "net/query.hpp"

namespace radguard::net::detail {

// How the pool's SCP reads from its association.
struct Channel {
  T_ASC_Association* assoc = nullptr;
  T_ASC_PresentationContextID pres = 0;
  T_DIMSE_BlockingMode blocking = DIMSE_BLOCKING;
  int timeout_s = 60;
  std::string abstract_syntax;  // of the presentation context `pres`
  std::string calling_ae;  // printable
  // Hears one neutral line per refused request (AE title, why; never a value). Optional.
  std::function<void(const std::string&)> note;
};

// The next PDV of the channel's association: one left in the last P-DATA PDU read, or the first
// of the next (waiting at most the channel's timeout). DCMTK's own reader is private to its
// DIMSE layer.
OFCondition next_pdv(const Channel& channel, DUL_PDV& pdv);

// A bound on the whole arrival of a data set, checked between its fragments. The channel's
// timeout bounds each wait only: fragments that each come just in time (or empty ones) would
// hold a pool thread, and what was received so far, for as long as the peer liked. The
// allowance is `floor` plus one second per `min_bytes_per_s` bytes received so far, so a large
// data set on a slow link passes while a trickle does not; min_bytes_per_s 0: the floor alone.
class ArrivalDeadline {
 public:
  ArrivalDeadline(std::chrono::seconds floor, std::uint64_t min_bytes_per_s)
      : start_(std::chrono::steady_clock::now()), floor_(floor), rate_(min_bytes_per_s) {}
  // Whether a data set of which `received` bytes have arrived is past its allowance.
  // In double seconds: a tiny rate or a huge floor would overflow a nanosecond count.
  [[nodiscard]] bool passed(std::uint64_t received) const {
    double allowed_s = static_cast<double>(floor_.count());
    if (rate_ > 0) allowed_s += static_cast<double>(received) / static_cast<double>(rate_);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
    return elapsed.count() > allowed_s;
  }

 private:
  std::chrono::steady_clock::time_point start_;
  std::chrono::seconds floor_;
  std::uint64_t rate_;
};

// Whether the request's Affected SOP Class UID is the abstract syntax its presentation context
// was negotiated for (PS3.7 9.1: a command goes on a context of its own SOP class). The C-STORE
// receiver adds its own check (a storage SOP class) to this one.
[[nodiscard]] bool context_is_for(const Channel& channel, const char* affected_sop_class);

// Whether a request for `affected_sop_class` may be served on the channel's context: the
// context was negotiated for that very SOP class, one of `allowed` (PS3.7 9.1: a command goes
// on a context of its own SOP class; otherwise it is answered 0x0122, SOP Class Not Supported).
[[nodiscard]] bool context_serves(const Channel& channel, const char* affected_sop_class,
                                  const std::vector<std::string>& allowed);

// Reads the request's identifier, asks the handler and answers: a pending answer per match,
// then success (or the failure status). An identifier is read as bytes and at most
// kMaxIdentifierBytes of it are held: past that the request is answered 0xA900 and the
// association aborted (the rest of the identifier is still on its way; reading it would cost
// time bounded only by the peer). Returns a bad condition when the association cannot go on.
OFCondition serve_find(const Channel& channel, const T_DIMSE_C_FindRQ& request,
                       const QueryService& service);

// Reads the request's identifier (bounded as serve_find's), asks the handler for the plan,
// sends each file to the destination (one association) with a pending answer after each, then
// the last answer with the counts. An unknown destination is answered 0xA801 and nothing is sent.
OFCondition serve_move(const Channel& channel, const T_DIMSE_C_MoveRQ& request,
                       const QueryService& service);

}  // namespace radguard::net::detail
