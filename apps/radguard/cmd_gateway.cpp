// radguard gateway: flags -> GatewayConfig and pipeline Spec -> gateway::run_gateway;
// radguard gateway status: the spool's counts and last failures.
#include <charconv>
#include <fstream>
#include <iostream>

#include "cli.hpp"
#include "core/error_table.hpp"
#include "gateway/gateway.hpp"
#include "gateway/pull.hpp"
#include "stage_options.hpp"

namespace radguard::cli {

namespace {

struct GatewayArgs {
  StageArgs stage;
  std::string listen;
  std::string ae_title;
  std::string spool;
  std::string forward;
  std::string output;
  std::vector<std::string> allowed_calling;
  std::vector<std::string> allowed_hosts;
  std::string tls_cert, tls_key, tls_trust;
  std::string tls_for = "both";
  std::string tls_forward_name;
  unsigned max_associations = 8;
  unsigned store_floor = net::ServerConfig{}.store_floor_s;
  std::uint64_t store_min_rate_kb = net::ServerConfig{}.store_min_bytes_per_s / 1024;
  std::uint64_t store_max_mb = net::ServerConfig{}.store_max_bytes >> 20;
  unsigned workers = 1;
  unsigned series_quiet = 30;
  unsigned retry_max = 300;
  unsigned forward_attempts = 0;
  unsigned forward_refusals = 3;
  unsigned forward_associations = gateway::GatewayConfig{}.forward_associations;
  unsigned min_free_mb = 64;
  // query/retrieve over the output folder
  bool query_retrieve = false;
  std::vector<std::string> move_destinations;
  // release route (consent gate and ledger), as radguard export takes it
  std::string purpose, recipient, registry, ledger;
  // status
  std::string status_spool;
  bool json = false;
  // pull
  std::string pull_from, pull_ae_title, pull_move_to, pull_by = "study", pull_list;
  unsigned pull_timeout = 600;
  std::vector<std::string> pull_values;
};

// The port of --listen. A HOST:PORT is refused with the reason rather than CLI11's "could not
// convert": the gateway listens on every address, and --allow-host narrows who may connect.
Result<std::uint16_t> listen_port(const std::string& text) {
  unsigned port = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, port);
  if (!text.empty() && error == std::errc{} && stop == end && port >= 1 && port <= 65535)
    return static_cast<std::uint16_t>(port);
  if (text.find(':') != std::string::npos)
    return fail(ErrorCode::usage,
                "--listen takes a port number only (1 to 65535): the gateway listens on every "
                "address; use --allow-host to say which peers may connect");
  return fail(ErrorCode::usage, "--listen PORT (1 to 65535) is required");
}

int run_gateway_command(const GatewayArgs& args) {
  const auto port = listen_port(args.listen);
  if (!port) return report_error(port.error());
  if (args.ae_title.empty()) return report_error({ErrorCode::usage, "--ae-title is required"});
  if (args.spool.empty()) return report_error({ErrorCode::usage, "--spool DIR is required"});
  gateway::GatewayConfig config;
  config.port = *port;
  config.ae_title = args.ae_title;
  config.spool = args.spool;
  config.output = args.output;
  if (!args.forward.empty()) {
    auto peer = net::parse_peer(args.forward);
    if (!peer) return report_error(with_context(peer.error(), "--forward"));
    config.forward = *peer;
  }
  config.allowed_calling = args.allowed_calling;
  for (const auto& host : args.allowed_hosts) {
    auto rule = net::parse_host_rule(host);
    if (!rule) return report_error(with_context(rule.error(), "--allow-host"));
    config.allowed_hosts.push_back(*rule);
  }
  const bool any_tls = !args.tls_cert.empty() || !args.tls_key.empty() || !args.tls_trust.empty();
  if (any_tls) {
    if (args.tls_cert.empty() || args.tls_key.empty() || args.tls_trust.empty())
      return report_error({ErrorCode::usage,
                           "TLS needs all three of --tls-cert, --tls-key and --tls-trust"});
    const net::TlsFiles files{args.tls_cert, args.tls_key, args.tls_trust};
    if (args.tls_for != "forward") config.tls = files;
    if (args.tls_for != "listen") {
      if (!config.forward)
        return report_error({ErrorCode::usage,
                             "--tls-for " + args.tls_for + " needs --forward (use --tls-for "
                             "listen with --output)"});
      config.forward->tls = files;
      config.forward->tls_name = args.tls_forward_name;
    }
  }
  if (!args.tls_forward_name.empty() && !(config.forward && config.forward->tls))
    return report_error({ErrorCode::usage, "--tls-forward-name needs TLS for --forward"});
  config.max_associations = args.max_associations;
  config.store_floor_s = args.store_floor;
  config.store_min_bytes_per_s = args.store_min_rate_kb * 1024;
  config.store_max_bytes = args.store_max_mb << 20;
  config.workers = args.workers;
  config.series_quiet = std::chrono::seconds(args.series_quiet);
  config.retry.max = std::chrono::seconds(args.retry_max);
  config.retry.max_attempts = args.forward_attempts;
  config.retry.max_refusals = args.forward_refusals;
  config.forward_associations = args.forward_associations;
  config.min_free_bytes = static_cast<std::uint64_t>(args.min_free_mb) << 20;
  if (args.query_retrieve) config.query_retrieve = gateway::QueryRetrieve::over_output;
  for (const auto& destination : args.move_destinations) {
    auto peer = net::parse_peer(destination);
    if (!peer) return report_error(with_context(peer.error(), "--move-destination"));
    config.move_destinations.push_back(*peer);
  }

  auto spec = stage_spec(args.stage);
  if (!spec) return report_error(spec.error());
  // The release settings: each flag given overrides the pipeline file's [release] table.
  // Any of them makes a release route, which needs all four (check_route): a [release] table
  // is never silently ignored.
  gateway::ReleaseRoute release{spec->release.purpose, spec->release.recipient,
                                spec->release.registry, spec->release.ledger, {}};
  if (!args.purpose.empty()) release.purpose = args.purpose;
  if (!args.recipient.empty()) release.recipient = args.recipient;
  if (!args.registry.empty()) release.registry = args.registry;
  if (!args.ledger.empty()) release.ledger = args.ledger;
  if (!release.purpose.empty() || !release.recipient.empty() || !release.registry.empty() ||
      !release.ledger.empty())
    config.release = release;
  if (!spec->release.on_failure.empty() && spec->release.on_failure != "withhold-study")
    return report_error({ErrorCode::usage,
                         "[release] on_failure = \"" + spec->release.on_failure +
                             "\" does not apply to the gateway: it withholds (quarantines) the "
                             "instances of a patient without consent and goes on"});
  auto made = make_pipeline(*spec);
  if (!made) return report_error(made.error());
  if (auto checked = gateway::check_route(config, *made); !checked)
    return report_error(checked.error());

  // The first SIGTERM or SIGINT stops the gateway gracefully (exit 0); a second one kills it.
  auto ran = gateway::run_gateway(config, *made, interrupt_token(), std::cerr);
  if (!ran) return report_error(ran.error());
  return kExitSuccess;
}

int run_status_command(const GatewayArgs& args) {
  auto status = gateway::read_status(args.status_spool);
  if (!status) return report_error(status.error());
  std::cout << (args.json ? gateway::status_json(*status) : gateway::status_text(*status));
  return kExitSuccess;
}

int run_pull_command(const GatewayArgs& args) {
  gateway::PullConfig config;
  auto peer = net::parse_peer(args.pull_from);
  if (!peer) return report_error(with_context(peer.error(), "--from"));
  config.from = *peer;
  config.ae_title = args.pull_ae_title;
  config.move_to = args.pull_move_to;
  config.by = args.pull_by == "accession"    ? net::StudyKey::accession_number
              : args.pull_by == "patient-id" ? net::StudyKey::patient_id
                                             : net::StudyKey::study_uid;
  config.timeout_s = args.pull_timeout;
  config.values = args.pull_values;
  if (!args.pull_list.empty()) {
    std::ifstream list(args.pull_list);
    if (!list) return report_error({ErrorCode::io, "cannot read the list " + args.pull_list});
    for (std::string line; std::getline(list, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
        line.pop_back();
      const auto start = line.find_first_not_of(" \t");
      if (start == std::string::npos || line[start] == '#') continue;
      config.values.push_back(line.substr(start));
    }
  }
  if (auto checked = gateway::check_pull(config); !checked) return report_error(checked.error());
  auto totals = gateway::pull(config, std::cerr);
  if (!totals) return report_error(totals.error());
  std::cerr << "radguard pull: " << totals->items << " asked, " << totals->not_found
            << " not found, " << totals->studies << " studies moved, " << totals->completed
            << " instances sent, " << totals->failed << " failed\n";
  return totals->not_found == 0 && totals->failed_studies == 0 ? kExitSuccess : kExitSomeFailed;
}

}  // namespace

void add_gateway(CLI::App& app, Action& action) {
  auto args = std::make_shared<GatewayArgs>();
  auto* cmd = app.add_subcommand(
      "gateway", "de-identifying DICOM node: receive (C-STORE), de-identify, forward or write");
  cmd->add_option("--listen", args->listen, "TCP port to listen on (every address)")
      ->type_name("PORT");
  cmd->add_option("--ae-title", args->ae_title, "the gateway's AE title (called AE title)");
  cmd->add_option("--spool", args->spool,
                  "spool folder: received, to forward, quarantined (holds patient data)");
  cmd->add_option("--forward", args->forward, "forward de-identified instances to AET@HOST:PORT");
  cmd->add_option("--output", args->output,
                  "or write them into this folder, laid out as radguard deid lays it out");
  cmd->add_option("--allow-calling", args->allowed_calling,
                  "calling AE title allowed to send (repeatable; none given: any)");
  cmd->add_option("--allow-host", args->allowed_hosts,
                  "peer address or network (10.1.0.0/16) allowed to connect (repeatable; none "
                  "given: any)");
  cmd->add_option("--tls-cert", args->tls_cert, "DICOM TLS: this node's certificate (PEM)");
  cmd->add_option("--tls-key", args->tls_key,
                  "DICOM TLS: this node's private key (PEM, not encrypted; keep it owner-only)");
  cmd->add_option("--tls-trust,--tls-ca", args->tls_trust,
                  "DICOM TLS: certificates trusted to sign peers' certificates (PEM)");
  cmd->add_option("--tls-for", args->tls_for,
                  "with the TLS files: both (default: listen with TLS only, forward with TLS), "
                  "listen, or forward")
      ->check(CLI::IsMember({"both", "listen", "forward"}));
  cmd->add_option("--tls-forward-name", args->tls_forward_name,
                  "DICOM TLS: the name the destination's certificate must carry (default: the "
                  "host of --forward; a certificate for another name is refused)");
  cmd->add_option("--max-associations", args->max_associations,
                  "associations served at once; more are refused (default 8)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--store-floor", args->store_floor,
                  "seconds any C-STORE data set may take to arrive; a peer past its deadline is "
                  "aborted, nothing kept (default 120)")
      ->check(CLI::Range(1, 86400));
  cmd->add_option("--store-min-rate", args->store_min_rate_kb,
                  "KiB/s: each KiB received adds 1/rate s to the deadline, so a large instance "
                  "on a slow link still passes (default 64; 0: the floor alone)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--store-max-mb", args->store_max_mb,
                  "largest C-STORE data set accepted, MiB; larger ones are aborted (default 8192)")
      ->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--workers", args->workers, "de-identification threads (default 1)")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--series-quiet", args->series_quiet,
                  "with defacing: seconds a series must receive nothing before it is defaced whole (default 30)");
  cmd->add_option("--retry-max", args->retry_max,
                  "longest wait between forward attempts, seconds (default 300)")
      ->check(CLI::Range(1, 86400));
  cmd->add_option("--forward-attempts", args->forward_attempts,
                  "give a forward up (keep it in SPOOL/failed) after this many failed attempts "
                  "of any kind (default 0: never; a destination down is waited for)");
  cmd->add_option("--forward-refusals", args->forward_refusals,
                  "give a forward up after the destination answered a failure status this many "
                  "times (default 3; 0: never)");
  cmd->add_option("--forward-associations", args->forward_associations,
                  "outgoing associations at once, each with instances of its own (default 1)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--min-free-mb", args->min_free_mb,
                  "refuse instances (out of resources) below this free space (default 64)");
  cmd->add_flag("--query-retrieve", args->query_retrieve,
                "answer C-FIND and C-MOVE over the de-identified instances of --output (never "
                "the spool); needs --allow-calling or --allow-host, not with a release route");
  cmd->add_option("--move-destination", args->move_destinations,
                  "a C-MOVE destination, AET@HOST:PORT (repeatable; other AE titles refused); "
                  "moves use TLS, with --tls-cert/--tls-key/--tls-trust, exactly when the "
                  "listener does");
  cmd->add_option("--purpose", args->purpose,
                  "release route: the purpose each patient must have consented to");
  cmd->add_option("--recipient", args->recipient,
                  "release route: who receives the data (recorded in the ledger)");
  cmd->add_option("--registry", args->registry,
                  "release route: consent registry (radguard consent); must exist");
  cmd->add_option("--ledger", args->ledger,
                  "release route: disclosure ledger; one entry per released study batch");
  add_stage_options(*cmd, args->stage);

  auto* status = cmd->add_subcommand("status", "a gateway spool's queues and last failures");
  status->add_option("--spool", args->status_spool, "the gateway's spool folder")->required();
  status->add_flag("--json", args->json, "JSON on stdout");
  status->callback([&action, args] { action = [args] { return run_status_command(*args); }; });

  auto* pull = cmd->add_subcommand(
      "pull", "have a PACS send studies (C-FIND, C-MOVE) to a running gateway, which "
              "de-identifies them on its route");
  pull->add_option("--from", args->pull_from, "the PACS, AET@HOST:PORT")->required();
  pull->add_option("--ae-title", args->pull_ae_title,
                   "this node's calling AE title (the PACS must allow it to query and move)")
      ->required();
  pull->add_option("--move-to", args->pull_move_to,
                   "the AE title the PACS knows the gateway by (C-MOVE destination)")
      ->required();
  pull->add_option("--by", args->pull_by,
                   "what the values are: study (Study Instance UID, default), accession or "
                   "patient-id")
      ->check(CLI::IsMember({"study", "accession", "patient-id"}));
  pull->add_option("--list", args->pull_list, "a file with one value per line (# comments)");
  pull->add_option("--timeout", args->pull_timeout,
                   "longest wait for the PACS's next answer, seconds (default 600)")
      ->check(CLI::Range(1, 86400));
  pull->add_option("values", args->pull_values, "Study Instance UIDs (or --by values)");
  pull->callback([&action, args] { action = [args] { return run_pull_command(*args); }; });

  cmd->callback([&action, args, status, pull] {
    if (*status || *pull) return;
    action = [args] { return run_gateway_command(*args); };
  });
}

}  // namespace radguard::cli
