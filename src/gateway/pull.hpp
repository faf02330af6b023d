#pragma once
// radguard gateway pull: the research team's "give me these studies, de-identified" job. For
// each study named (by Study Instance UID, accession number or patient ID), asks a PACS for
// the matching studies (C-FIND, Study Root) and has it send each one (C-MOVE) to a node it
// knows by an AE title: a running radguard gateway, whose route (consent gate, pipeline,
// forward or output, ledger) then takes every instance as it takes a C-STORE from anyone.
// Nothing is retrieved into this process: the gateway's durable spool is the one way in.
//
// Log lines name the item's position in the list, counts and statuses; never the value that
// named it (a patient ID or accession number is identifying) nor a Study Instance UID.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "net/dimse.hpp"

namespace radguard::gateway {

struct PullConfig {
  net::Peer from;             // the PACS
  std::string ae_title;       // this node's calling AE title (the PACS must allow it)
  std::string move_to;        // the AE title the PACS knows the gateway by (C-MOVE destination)
  net::StudyKey by = net::StudyKey::study_uid;
  std::vector<std::string> values;  // one study (or one patient's studies) each
  std::uint32_t timeout_s = 600;    // longest wait for one C-MOVE answer
};

struct PullTotals {
  std::size_t items = 0;         // values asked for
  std::size_t not_found = 0;     // values that matched no study
  std::size_t studies = 0;       // studies moved (C-MOVE asked)
  std::size_t failed_studies = 0;  // C-MOVE failed, or some instance of it failed
  std::uint64_t completed = 0, failed = 0, warnings = 0;  // instances (sub-operations)
};

// Checks the list (each value: net::check_study_key, shown by position only) and the AE
// titles. Fails with ErrorCode::usage.
[[nodiscard]] Status check_pull(const PullConfig& config);

// Pulls every item in order, one line per item on `log`. An item whose C-FIND or C-MOVE
// fails is counted and the next one is tried; the function fails (ErrorCode::io) only when
// the PACS cannot be reached at all for the first item.
[[nodiscard]] Result<PullTotals> pull(const PullConfig& config, std::ostream& log);

}  // namespace radguard::gateway
