#pragma once
// Internal to src/net: the C-FIND and C-MOVE exchanges of a Query/Retrieve SCP (query.hpp), on
// an association the StoreServer's pool serves (dimse.cpp hands the requests over). Holds DCMTK
// types; include only from src/net.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmnet/assoc.h>
#include <dcmtk/dcmnet/dimse.h>

#include <functional>
#include <string>

#include "net/query.hpp"

namespace radguard::net::detail {

// How the pool's SCP reads from its association.
struct Channel {
  T_ASC_Association* assoc = nullptr;
  T_ASC_PresentationContextID pres = 0;
  T_DIMSE_BlockingMode blocking = DIMSE_BLOCKING;
  int timeout_s = 60;
  std::string calling_ae;  // printable
  // Hears one neutral line per refused request (AE title, why; never a value). Optional.
  std::function<void(const std::string&)> note;
};

// The next PDV of the channel's association: one left in the last P-DATA PDU read, or the first
// of the next (waiting at most the channel's timeout). DCMTK's own reader is private to its
// DIMSE layer.
OFCondition next_pdv(const Channel& channel, DUL_PDV& pdv);

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
