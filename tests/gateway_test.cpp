// radguard gateway: the spool (durable receive, quarantine, outbox with retries that survive
// a restart, a crash between write and rename) and the gateway in process over loopback
// (C-STORE to it, output laid out as deid lays it out, refused instances quarantined).
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/scu.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "consent/consent.hpp"
#include "core/group_commit.hpp"
#include "deid/deid_run.hpp"
#include "gateway/gateway.hpp"
#include "gateway/pull.hpp"
#include "gateway/signal.hpp"
#include "gateway/spool.hpp"
#include "ledger/ledger.hpp"
#include "net/dimse.hpp"
#include "pipeline/pipeline.hpp"
#include "support/fixtures.hpp"
#include "support/head_phantom.hpp"
#include "support/series_writer.hpp"

namespace radguard {
namespace {

namespace fs = std::filesystem;
using testing::read_bytes;
using testing::TempDir;

std::vector<std::uint8_t> bytes_of(std::string_view text) {
  return {text.begin(), text.end()};
}

std::size_t count_files(const fs::path& root) {
  std::size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(root, ec))
    if (e.is_regular_file()) ++n;
  return n;
}

TEST(GatewaySpool, AcceptedInstancesAreDurableOwnerOnlyAndListedInArrivalOrder) {
  TempDir dir;
  auto spool = gateway::Spool::open(dir / "spool");
  ASSERT_TRUE(spool) << spool.error().message;
  auto first = spool->accept(bytes_of("first"));
  auto second = spool->accept(bytes_of("second"));
  ASSERT_TRUE(first && second);
  EXPECT_LT(*first, *second);
  EXPECT_EQ(spool->incoming(), (std::vector<std::string>{*first, *second}));
  const auto perms = fs::status(spool->incoming_path(*first)).permissions();
  EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
  EXPECT_EQ(read_bytes(spool->incoming_path(*second)), bytes_of("second"));
  ASSERT_TRUE(spool->finish_incoming(*first));
  EXPECT_EQ(spool->incoming(), std::vector<std::string>{*second});
  // A second object on the same folder (a restart) sees the same state.
  auto reopened = gateway::Spool::open(dir / "spool");
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->incoming(), std::vector<std::string>{*second});
}

TEST(GatewaySpool, ACrashBetweenWriteAndRenameLeavesNothingAcknowledgedAndIsCleanedUp) {
  TempDir dir;
  ASSERT_TRUE(gateway::Spool::open(dir / "spool"));
  // A child process receives an instance into its temporary file and dies before the rename
  // (as kill -9 would: no destructor runs).
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto spool = gateway::Spool::open(dir / "spool");
    if (!spool) _exit(2);
    auto pending = spool->reserve_incoming();
    if (!pending) _exit(3);
    std::ofstream(pending->temp_path(), std::ios::binary) << "half an instance";
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(count_files(dir / "spool" / "incoming"), 1u);  // the temporary file
  auto spool = gateway::Spool::open(dir / "spool");       // the restart
  ASSERT_TRUE(spool);
  EXPECT_TRUE(spool->incoming().empty());
  EXPECT_EQ(count_files(dir / "spool" / "incoming"), 0u);
  // A temporary of a live process (this one) is never listed either, nor removed.
  auto pending = spool->reserve_incoming();
  ASSERT_TRUE(pending);
  std::ofstream(pending->temp_path(), std::ios::binary) << "arriving";
  EXPECT_TRUE(spool->incoming().empty());
  EXPECT_TRUE(gateway::Spool::open(dir / "spool"));
  EXPECT_TRUE(fs::exists(pending->temp_path()));
  auto id = spool->commit_incoming(*pending);
  ASSERT_TRUE(id);
  EXPECT_EQ(spool->incoming(), std::vector<std::string>{*id});
}

TEST(GatewaySpool, QuarantineKeepsTheInstanceAndItsReasonAndStatusShowsThem) {
  TempDir dir;
  auto spool = gateway::Spool::open(dir / "spool");
  ASSERT_TRUE(spool);
  auto id = spool->accept(bytes_of("not dicom"));
  ASSERT_TRUE(id);
  ASSERT_TRUE(spool->quarantine(*id, Error{ErrorCode::not_dicom, "no DICOM preamble\nsecond"}));
  EXPECT_TRUE(spool->incoming().empty());
  EXPECT_EQ(read_bytes(dir / "spool" / "quarantine" / (*id + ".dcm")), bytes_of("not dicom"));
  const auto status = spool->status();
  EXPECT_EQ(status.quarantined, 1u);
  ASSERT_EQ(status.last_quarantined.size(), 1u);
  EXPECT_EQ(status.last_quarantined[0].id, *id);
  EXPECT_EQ(status.last_quarantined[0].reason, "not_dicom: no DICOM preamble second");
  const std::string json = gateway::status_json(status);
  EXPECT_NE(json.find("\"quarantined\": 1"), std::string::npos) << json;
  EXPECT_NE(gateway::status_text(status).find("quarantined: 1"), std::string::npos);
}

TEST(GatewaySpool, OutboxRetriesBackOffAndSurviveARestart) {
  TempDir dir;
  auto spool = gateway::Spool::open(dir / "spool");
  ASSERT_TRUE(spool);
  const fs::path name = fs::path("2.25.1") / "2.25.2" / "2.25.3.dcm";
  ASSERT_TRUE(spool->put_outbox(name, bytes_of("deidentified")));
  EXPECT_FALSE(spool->put_outbox("../escape.dcm", bytes_of("x")));
  EXPECT_FALSE(spool->put_outbox("/abs.dcm", bytes_of("x")));
  auto due = spool->outbox_due(1000, 10);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].name, name);
  EXPECT_EQ(due[0].attempts, 0u);
  const gateway::RetryPolicy policy{std::chrono::seconds(2), std::chrono::seconds(5)};
  ASSERT_TRUE(spool->forward_failed(due[0], "no association", 1000, policy));
  EXPECT_TRUE(spool->outbox_due(1001, 10).empty());  // not before 1002
  auto reopened = gateway::Spool::open(dir / "spool");
  ASSERT_TRUE(reopened);
  auto again = reopened->outbox_due(1002, 10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempts, 1u);
  EXPECT_EQ(again[0].last_error, "no association");
  EXPECT_EQ(reopened->status().outbox_retrying, 1u);
  ASSERT_TRUE(reopened->forward_failed(again[0], "no association", 1002, policy));
  EXPECT_TRUE(reopened->outbox_due(1005, 10).empty());  // 4 s after the second failure
  ASSERT_EQ(reopened->outbox_due(1006, 10).size(), 1u);
  EXPECT_EQ(gateway::retry_delay(1, policy).count(), 2);
  EXPECT_EQ(gateway::retry_delay(2, policy).count(), 4);
  EXPECT_EQ(gateway::retry_delay(3, policy).count(), 5);  // capped
  EXPECT_EQ(gateway::retry_delay(60, policy).count(), 5);
  ASSERT_TRUE(reopened->forwarded(reopened->outbox_due(1006, 10)[0]));
  const auto status = reopened->status();
  EXPECT_EQ(status.outbox, 0u);
  EXPECT_EQ(status.outbox_retrying, 0u);
  EXPECT_EQ(count_files(dir / "spool" / "outbox"), 0u);
}

// Batches: outbox entries written with one group commit (a bad name fails alone), instances
// leaving incoming/ together, forwards removed as they arrive and flushed once.
TEST(GatewaySpool, BatchesOfInstancesMoveTogetherAndABadNameFailsAlone) {
  TempDir dir;
  auto spool = gateway::Spool::open(dir / "spool");
  ASSERT_TRUE(spool);
  std::vector<std::string> ids;
  for (const char* text : {"a", "b", "c"}) ids.push_back(*spool->accept(bytes_of(text)));
  const auto one = bytes_of("one"), two = bytes_of("two");
  const std::vector<gateway::OutboxEntry> entries = {
      {fs::path("2.25.1") / "2.25.2" / "2.25.3.dcm", one},
      {fs::path("..") / "escape.dcm", two},
      {fs::path("2.25.4") / "2.25.5" / "2.25.6.dcm", two},
  };
  const auto put = spool->put_outbox(entries);
  ASSERT_EQ(put.size(), 3u);
  EXPECT_TRUE(put[0] && put[2]);
  ASSERT_FALSE(put[1]);
  EXPECT_EQ(put[1].error().code, ErrorCode::usage);
  EXPECT_FALSE(fs::exists(dir / "spool" / "escape.dcm"));
  EXPECT_EQ(read_bytes(dir / "spool" / "outbox" / entries[2].name), two);
  ASSERT_TRUE(spool->finish_incoming(std::span<const std::string>(ids)));
  EXPECT_TRUE(spool->incoming().empty());
  auto due = spool->outbox_due(1000, 10);
  ASSERT_EQ(due.size(), 2u);
  for (const auto& item : due)
    ASSERT_TRUE(spool->forwarded(item, PendingFile::FolderSync::deferred));
  ASSERT_TRUE(spool->sync_outbox(due));
  EXPECT_EQ(spool->status().outbox, 0u);
  EXPECT_EQ(count_files(dir / "spool" / "outbox"), 0u);
}

// A forward the destination keeps refusing, or one past the attempt limit, is given up: kept
// in failed/ with its record, no longer retried, shown by status.
TEST(GatewaySpool, ForwardsPastTheirLimitsAreGivenUpAndKeptInFailed) {
  TempDir dir;
  auto spool = gateway::Spool::open(dir / "spool");
  ASSERT_TRUE(spool);
  const fs::path refused = fs::path("2.25.1") / "2.25.2" / "2.25.3.dcm";
  const fs::path unreachable = fs::path("2.25.1") / "2.25.2" / "2.25.4.dcm";
  ASSERT_TRUE(spool->put_outbox(refused, bytes_of("a")));
  ASSERT_TRUE(spool->put_outbox(unreachable, bytes_of("b")));
  gateway::RetryPolicy policy{std::chrono::seconds(1), std::chrono::seconds(1)};
  policy.max_refusals = 2;
  policy.max_attempts = 3;
  std::int64_t now = 1000;
  std::map<fs::path, gateway::ForwardFate> fate;
  for (int round = 0; round < 3; ++round, now += 10) {
    for (const auto& item : spool->outbox_due(now, 10)) {
      auto noted = spool->forward_failed(item,
                                         item.name == refused ? "destination answered 0xA900"
                                                              : "no association",
                                         now, policy,
                                         item.name == refused ? gateway::ForwardFailure::refused
                                                              : gateway::ForwardFailure::unreachable);
      ASSERT_TRUE(noted) << noted.error().message;
      fate[item.name] = *noted;
    }
    // The refused one goes after its second refusal, the unreachable one after 3 attempts.
    if (round == 0) {
      EXPECT_EQ(spool->status().failed, 0u);
    }
    if (round == 1) {
      EXPECT_EQ(spool->status().failed, 1u);
    }
  }
  EXPECT_EQ(fate[refused], gateway::ForwardFate::given_up);
  EXPECT_EQ(fate[unreachable], gateway::ForwardFate::given_up);
  EXPECT_TRUE(spool->outbox_due(now + 100, 10).empty());
  EXPECT_EQ(read_bytes(dir / "spool" / "failed" / refused), bytes_of("a"));
  EXPECT_EQ(read_bytes(dir / "spool" / "failed" / unreachable), bytes_of("b"));
  const auto status = gateway::Spool::open(dir / "spool")->status();
  EXPECT_EQ(status.outbox, 0u);
  EXPECT_EQ(status.outbox_retrying, 0u);
  EXPECT_EQ(status.failed, 2u);
  ASSERT_EQ(status.last_failed.size(), 2u);
  const std::string text = gateway::status_text(status);
  EXPECT_NE(text.find("given up, kept in failed/): 2"), std::string::npos) << text;
  EXPECT_NE(text.find("after 2 attempts: destination answered 0xA900"), std::string::npos) << text;
  EXPECT_NE(gateway::status_json(status).find("\"failed\": 2"), std::string::npos);
  // Without limits (the default for a destination that is down), never given up.
  const gateway::RetryPolicy patient{std::chrono::seconds(1), std::chrono::seconds(1)};
  ASSERT_TRUE(spool->put_outbox("2.25.9/2.25.9/2.25.9.dcm", bytes_of("c")));
  for (int i = 0; i < 20; ++i, now += 10) {
    auto due = spool->outbox_due(now, 10);
    ASSERT_EQ(due.size(), 1u);
    EXPECT_EQ(*spool->forward_failed(due[0], "no association", now, patient),
              gateway::ForwardFate::retrying);
  }
}

TEST(GatewaySpool, AFullFileSystemRefusesNewInstances) {
  TempDir dir;
  auto spool = gateway::Spool::open(dir / "spool", std::uint64_t{1} << 62);
  ASSERT_TRUE(spool);
  auto refused = spool->accept(bytes_of("x"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::io);
  EXPECT_TRUE(spool->incoming().empty());
}

TEST(GatewayNet, ParsesPeers) {
  auto peer = net::parse_peer("DEST@127.0.0.1:11112");
  ASSERT_TRUE(peer);
  EXPECT_EQ(peer->ae_title, "DEST");
  EXPECT_EQ(peer->host, "127.0.0.1");
  EXPECT_EQ(peer->port, 11112);
  EXPECT_FALSE(net::parse_peer("DEST@host"));
  EXPECT_FALSE(net::parse_peer("host:104"));
  EXPECT_FALSE(net::parse_peer("DEST@host:0"));
  EXPECT_FALSE(net::parse_peer("DEST@host:70000"));
  EXPECT_FALSE(net::parse_peer("WAY-TOO-LONG-AE-TITLE@host:104"));
}

// A value that names studies to pull must match them exactly: C-FIND's wildcards and value
// separator would make it match other patients' studies.
TEST(GatewayNet, StudyKeysWithWildcardsAreRefused) {
  using net::StudyKey;
  EXPECT_TRUE(net::check_study_key(StudyKey::patient_id, "4MR1"));
  EXPECT_TRUE(net::check_study_key(StudyKey::accession_number, "A 123"));
  EXPECT_TRUE(net::check_study_key(StudyKey::study_uid, "1.2.840.113619.2.1"));
  for (const char* bad : {"4MR*", "*", "4MR?", "4MR1\\5CT2", "", " ", "   ", " 4MR1", "4MR1 "})
    EXPECT_FALSE(net::check_study_key(StudyKey::patient_id, bad)) << bad;
  EXPECT_FALSE(net::check_study_key(StudyKey::accession_number, std::string(65, 'A')));
  EXPECT_FALSE(net::check_study_key(StudyKey::accession_number, std::string("A\n1")));
  EXPECT_FALSE(net::check_study_key(StudyKey::study_uid, "1.2.*"));
  EXPECT_FALSE(net::check_study_key(StudyKey::study_uid, "1.2.abc"));
  gateway::PullConfig config;
  config.ae_title = "RG";
  config.move_to = "RG";
  config.by = StudyKey::patient_id;
  config.values = {"4MR1", "4MR*"};
  const auto refused = gateway::check_pull(config);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::usage);
  EXPECT_NE(refused.error().message.find("item 2"), std::string::npos);
  EXPECT_EQ(refused.error().message.find("4MR"), std::string::npos);  // the value is not shown
  config.values.clear();
  EXPECT_FALSE(gateway::check_pull(config));
}

TEST(GatewayNet, HostRulesMatchAddressesAndNetworks) {
  const auto one = net::parse_host_rule("127.0.0.1");
  ASSERT_TRUE(one);
  EXPECT_TRUE(net::host_matches(*one, "127.0.0.1"));
  EXPECT_FALSE(net::host_matches(*one, "127.0.0.2"));
  const auto lan = net::parse_host_rule("10.1.0.0/16");
  ASSERT_TRUE(lan);
  EXPECT_TRUE(net::host_matches(*lan, "10.1.255.7"));
  EXPECT_FALSE(net::host_matches(*lan, "10.2.0.1"));
  EXPECT_FALSE(net::host_matches(*lan, "::1"));
  const auto odd = net::parse_host_rule("10.1.2.3/21");  // a prefix not on a byte boundary
  ASSERT_TRUE(odd);
  EXPECT_TRUE(net::host_matches(*odd, "10.1.7.200"));
  EXPECT_FALSE(net::host_matches(*odd, "10.1.8.1"));
  const auto v6 = net::parse_host_rule("fd00:1::/32");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(net::host_matches(*v6, "fd00:1:2::9"));
  EXPECT_FALSE(net::host_matches(*v6, "fd00:2::9"));
  EXPECT_FALSE(net::host_matches(*v6, "10.1.2.3"));
  const auto any = net::parse_host_rule("0.0.0.0/0");
  ASSERT_TRUE(any);
  EXPECT_TRUE(net::host_matches(*any, "192.0.2.9"));
  EXPECT_FALSE(net::host_matches(*one, "not an address"));
  // Names are refused (the list is checked against addresses, never a lookup); so are bad
  // prefixes.
  for (const char* bad : {"localhost", "", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::1/129",
                          "10.0.0.256"}) {
    const auto refused = net::parse_host_rule(bad);
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().code, ErrorCode::usage);
  }
}

TEST(GatewayNet, TlsFilesThatDoNotLoadAreRefusedByName) {
  TempDir dir;
  {
    std::ofstream(dir / "not-a-cert.pem") << "not PEM\n";
  }
  const net::TlsFiles missing{dir / "cert.pem", dir / "key.pem", dir / "ca.pem"};
  const auto a = net::check_tls(missing);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, ErrorCode::usage);
  EXPECT_NE(a.error().message.find("cert.pem"), std::string::npos) << a.error().message;
  const net::TlsFiles garbage{dir / "not-a-cert.pem", dir / "not-a-cert.pem",
                              dir / "not-a-cert.pem"};
  const auto b = net::check_tls(garbage);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, ErrorCode::usage);
  // The server refuses them at creation, before it listens.
  net::ServerConfig config;
  config.port = 104;
  config.ae_title = "RG";
  config.tls = garbage;
  const auto server = net::StoreServer::create(
      config, [](const net::StoreRequest&, const net::ReceiveInto&) { return net::kStatusSuccess; });
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code, ErrorCode::usage);
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A gateway running in a thread of the test; stopped and joined however the test ends.
class Running {
 public:
  Running(const gateway::GatewayConfig& config, const pipeline::Pipeline& pipeline)
      : thread_([this, config, &pipeline] {
          result = gateway::run_gateway(config, pipeline, stop_, log);
        }) {}
  ~Running() { finish(); }
  void finish() {
    stop_.cancel();
    if (thread_.joinable()) thread_.join();
  }
  std::ostringstream log;
  Result<gateway::GatewayTotals> result = fail(ErrorCode::internal, "not run");

 private:
  batch::CancelToken stop_;
  std::thread thread_;
};

class GatewayRun : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_key_file(dir_ / "k.key");
  }
  pipeline::Pipeline make_pipeline(std::vector<std::string> options = {}) {
    pipeline::Spec spec;
    spec.key_file = dir_ / "k.key";
    spec.options = std::move(options);
    auto made = pipeline::Pipeline::create(spec);
    EXPECT_TRUE(made) << made.error().message;
    return std::move(*made);
  }
  gateway::GatewayConfig config() {
    gateway::GatewayConfig c;
    c.port = free_port();
    c.ae_title = "RGTEST";
    c.spool = dir_ / "spool";
    c.output = dir_ / "out";
    c.min_free_bytes = 0;
    return c;
  }
  // A second gateway as the destination of a forward: AE title DEST, writing to a folder.
  gateway::GatewayConfig destination_config() {
    auto c = config();
    c.spool = dir_ / "dest-spool";
    c.output = dir_ / "dest-out";
    c.ae_title = "DEST";
    return c;
  }
  // Waits until `done` holds, at most 20 s.
  template <typename F>
  static bool wait_until(F done) {
    for (int i = 0; i < 200; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return done();
  }
  TempDir dir_;
};

TEST_F(GatewayRun, RefusesBadRoutes) {
  auto c = config();
  EXPECT_TRUE(gateway::check_route(c, make_pipeline()));
  EXPECT_TRUE(gateway::check_route(c, make_pipeline({"clean-recognizable-visual-features"})));
  auto no_quiet = c;
  no_quiet.series_quiet = std::chrono::seconds(0);
  const auto deface =
      gateway::check_route(no_quiet, make_pipeline({"clean-recognizable-visual-features"}));
  ASSERT_FALSE(deface);
  EXPECT_EQ(deface.error().code, ErrorCode::usage);
  auto both = c;
  both.forward = net::Peer{"DEST", "127.0.0.1", 104, {}, {}};
  EXPECT_FALSE(gateway::check_route(both, make_pipeline()));
  auto none = c;
  none.output.clear();
  EXPECT_FALSE(gateway::check_route(none, make_pipeline()));
  auto inside = c;
  inside.output = c.spool / "out";
  EXPECT_FALSE(gateway::check_route(inside, make_pipeline()));
  // A release route needs all four settings, a purpose radguard knows.
  auto partial = c;
  partial.release = gateway::ReleaseRoute{"research", "Lab", "consent.db", "", ""};
  const auto no_ledger = gateway::check_route(partial, make_pipeline());
  ASSERT_FALSE(no_ledger);
  EXPECT_EQ(no_ledger.error().code, ErrorCode::usage);
  EXPECT_NE(no_ledger.error().message.find("--ledger"), std::string::npos);
  auto bad_purpose = c;
  bad_purpose.release = gateway::ReleaseRoute{"gossip", "Lab", "consent.db", "l.db", ""};
  EXPECT_FALSE(gateway::check_route(bad_purpose, make_pipeline()));
  auto full = c;
  full.release = gateway::ReleaseRoute{"research", "Lab", "consent.db", "l.db", ""};
  EXPECT_TRUE(gateway::check_route(full, make_pipeline()));
}

// The consent gate and the ledger: a patient without consent for the purpose is quarantined
// before any stage (a reason naming no one); a consenting patient's instances are held per
// study until it is quiet, recorded as one ledger entry per study batch, and only then
// written.
TEST_F(GatewayRun, ReleasesOnlyConsentingPatientsAndRecordsEachStudyBatchBeforeDelivery) {
  const auto pipeline = make_pipeline();
  const fs::path registry_path = dir_ / "consent.db";
  // The registry's default denies research: PNOCONSENT2 is withheld.
  testing::permit_research(registry_path, "PCONSENT1");
  auto c = config();
  c.series_quiet = std::chrono::seconds(3);
  c.release = gateway::ReleaseRoute{"research", "Example lab", registry_path.string(),
                                    (dir_ / "ledger.db").string(), ""};
  Running running(c, pipeline);
  const net::Peer me{c.ae_title, "127.0.0.1", c.port, {}, {}};
  ASSERT_TRUE(wait_until([&] { return static_cast<bool>(net::echo(me, "SENDER", 5)); }));

  // The consenting patient: two instances of one study and one of another; the other
  // patient: one instance.
  std::vector<fs::path> files;
  auto add = [&](const std::string& patient, const std::string& study, int n) {
    auto ct = testing::make_ct(patient, "1.2.826.0.1.3680043.2.1125.9." + std::to_string(n));
    ct->getDataset()->putAndInsertString(DCM_StudyInstanceUID, study.c_str());
    files.push_back(dir_ / ("ct" + std::to_string(n) + ".dcm"));
    testing::save(*ct, files.back());
  };
  add("PCONSENT1", "1.2.826.0.1.3680043.2.1125.2.1", 1);
  add("PCONSENT1", "1.2.826.0.1.3680043.2.1125.2.1", 2);
  add("PCONSENT1", "1.2.826.0.1.3680043.2.1125.2.2", 3);
  add("PNOCONSENT2", "1.2.826.0.1.3680043.2.1125.2.3", 4);
  auto statuses = net::store_files(me, "SENDER", files, 10);
  ASSERT_TRUE(statuses) << statuses.error().message;
  for (auto s : *statuses) EXPECT_EQ(s, net::kStatusSuccess);

  // Held, not yet recorded: nothing delivered, nothing in the ledger.
  ASSERT_TRUE(wait_until([&] {
    return count_files(c.spool / "held") == 3 &&
           gateway::Spool::open(c.spool, 0)->status().quarantined == 1;
  })) << running.log.str();
  EXPECT_EQ(count_files(c.output), 0u);
  {
    auto ledger = ledger::Ledger::open((dir_ / "ledger.db").string(),
                                       ledger::LedgerAccess::existing_only);
    ASSERT_TRUE(ledger) << ledger.error().message;
    EXPECT_TRUE(ledger->all()->empty());
  }
  // Quiet: one entry per study, then the files.
  ASSERT_TRUE(wait_until([&] { return count_files(c.output) == 3; })) << running.log.str();
  ASSERT_TRUE(wait_until([&] { return gateway::Spool::open(c.spool, 0)->incoming().empty(); }));
  running.finish();
  ASSERT_TRUE(running.result) << running.result.error().message;
  EXPECT_EQ(running.result->ledger_entries, 2u);
  EXPECT_EQ(running.result->quarantined, 1u);

  auto ledger =
      ledger::Ledger::open((dir_ / "ledger.db").string(), ledger::LedgerAccess::existing_only);
  ASSERT_TRUE(ledger);
  auto entries = ledger->all();
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 2u);
  ASSERT_TRUE(ledger->verify()->intact());
  const auto key = crypto::SecretKey::load(dir_ / "k.key");
  ASSERT_TRUE(key);
  std::set<std::string> studies;
  std::uint64_t instances = 0;
  for (const auto& entry : *entries) {
    EXPECT_EQ(entry.status, ledger::EntryStatus::released);
    EXPECT_EQ(entry.purpose, "research");
    EXPECT_EQ(entry.recipient, "Example lab");
    EXPECT_EQ(entry.studies, 1u);
    ASSERT_EQ(entry.patients.size(), 1u);
    EXPECT_EQ(entry.patients[0].patient_hash, ledger::patient_hash(*key, "PCONSENT1"));
    ASSERT_EQ(entry.patients[0].studies.size(), 1u);
    EXPECT_EQ(entry.patients[0].studies[0].modalities, std::vector<std::string>{"CT"});
    // The recorded study is the released (pseudonymous) one.
    EXPECT_TRUE(fs::is_directory(c.output / entry.patients[0].studies[0].study_uid));
    studies.insert(entry.patients[0].studies[0].study_uid);
    instances += entry.instances;
  }
  EXPECT_EQ(studies.size(), 2u);
  EXPECT_EQ(instances, 3u);
  // The withheld patient's instance is in quarantine, with a reason that names no one.
  const auto status = gateway::Spool::open(c.spool, 0)->status();
  ASSERT_EQ(status.last_quarantined.size(), 1u);
  EXPECT_NE(status.last_quarantined[0].reason.find("withheld"), std::string::npos)
      << status.last_quarantined[0].reason;
  EXPECT_EQ(status.last_quarantined[0].reason.find("PNOCONSENT2"), std::string::npos);
  const std::string log = running.log.str();
  EXPECT_EQ(log.find("PCONSENT1"), std::string::npos) << log;
  EXPECT_EQ(log.find("PNOCONSENT2"), std::string::npos) << log;
}

TEST_F(GatewayRun, AReleaseRouteRefusesAMissingRegistryAndALedgerOfAnotherKey) {
  const auto pipeline = make_pipeline();
  auto c = config();
  c.release = gateway::ReleaseRoute{"research", "Lab", (dir_ / "missing.db").string(),
                                    (dir_ / "ledger.db").string(), ""};
  batch::CancelToken stop;
  stop.cancel();
  std::ostringstream log;
  const auto no_registry = gateway::run_gateway(c, pipeline, stop, log);
  ASSERT_FALSE(no_registry);
  EXPECT_EQ(no_registry.error().code, ErrorCode::not_found);

  ASSERT_TRUE(consent::Registry::open((dir_ / "consent.db").string()));
  {
    auto ledger = ledger::Ledger::open((dir_ / "ledger.db").string(),
                                       ledger::LedgerAccess::create_if_missing);
    ASSERT_TRUE(ledger);
    ledger::Entry other;
    other.recipient = "Someone";
    other.purpose = "research";
    other.profile.key_fingerprint = "0123456789abcdef";
    other.error = "test";
    ASSERT_TRUE(ledger->append(other));
  }
  c.release->registry = (dir_ / "consent.db").string();
  const auto other_key = gateway::run_gateway(c, pipeline, stop, log);
  ASSERT_FALSE(other_key);
  EXPECT_EQ(other_key.error().code, ErrorCode::key);
}

TEST_F(GatewayRun, ReceivesDeidentifiesWritesAsDeidAndQuarantinesRefusedInstances) {
  const auto pipeline = make_pipeline();
  auto c = config();
  c.allowed_calling = {"SENDER"};
  c.max_associations = 2;
  Running running(c, pipeline);
  const net::Peer me{c.ae_title, "127.0.0.1", c.port, {}, {}};
  ASSERT_TRUE(wait_until([&] { return static_cast<bool>(net::echo(me, "SENDER", 5)); }));

  // Two CTs and an instance the pipeline refuses (ultrasound: may show burned-in text).
  std::vector<fs::path> files;
  for (int i = 0; i < 2; ++i) {
    auto ct = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.9." + std::to_string(i));
    files.push_back(dir_ / ("ct" + std::to_string(i) + ".dcm"));
    testing::save(*ct, files.back());
  }
  auto us = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.9.7");
  us->getDataset()->putAndInsertString(DCM_Modality, "US");
  files.push_back(dir_ / "us.dcm");
  testing::save(*us, files.back());

  // A calling AE title not on the list is refused: nothing sent.
  EXPECT_FALSE(net::store_files(me, "STRANGER", files, 5));
  EXPECT_FALSE(net::echo(me, "STRANGER", 5));

  auto statuses = net::store_files(me, "SENDER", files, 10);
  ASSERT_TRUE(statuses) << statuses.error().message;
  for (auto s : *statuses) EXPECT_EQ(s, net::kStatusSuccess);  // all durably spooled

  ASSERT_TRUE(wait_until([&] {
    const auto st = gateway::Spool::open(c.spool, 0)->status();
    return st.incoming == 0 && st.quarantined == 1;
  }));
  // Exactly what process_instance gives, under the name deid gives.
  for (int i = 0; i < 2; ++i) {
    auto expected = pipeline.process_instance(read_bytes(files[static_cast<std::size_t>(i)]));
    ASSERT_TRUE(expected) << expected.error().message;
    EXPECT_EQ(read_bytes(c.output / expected->name), expected->bytes);
  }
  EXPECT_EQ(count_files(c.output), 2u);
  const auto status = gateway::Spool::open(c.spool, 0)->status();
  ASSERT_EQ(status.last_quarantined.size(), 1u);
  EXPECT_NE(status.last_quarantined[0].reason.find("policy"), std::string::npos)
      << status.last_quarantined[0].reason;

  // The same instance again: processed to the same name, nothing new.
  ASSERT_TRUE(net::store_files(me, "SENDER", {files[0]}, 10));
  ASSERT_TRUE(wait_until([&] { return gateway::Spool::open(c.spool, 0)->incoming().empty(); }));
  EXPECT_EQ(count_files(c.output), 2u);

  running.finish();
  const auto& ran = running.result;
  ASSERT_TRUE(ran) << ran.error().message;
  EXPECT_EQ(ran->received, 4u);
  EXPECT_EQ(ran->processed, 3u);
  EXPECT_EQ(ran->quarantined, 1u);
  // The log names no patient value.
  const std::string log = running.log.str();
  EXPECT_NE(log.find("STRANGER is not allowed"), std::string::npos) << log;
  EXPECT_EQ(log.find("PID12345"), std::string::npos);
  EXPECT_EQ(log.find("DOE"), std::string::npos);
  EXPECT_EQ(log.find("1.2.826.0.1.3680043.2.1125"), std::string::npos);
}

// A backlog larger than a worker's batch (an earlier run's spool): the workers share it,
// each batch published with one group commit; every output is what process_instance gives,
// a refused instance in the middle of a batch is quarantined alone, incoming/ empties.
TEST_F(GatewayRun, ABacklogIsProcessedInBatchesAsDeidWouldOneByOne) {
  const auto pipeline = make_pipeline();
  auto c = config();
  c.workers = 2;
  std::vector<std::vector<std::uint8_t>> sent;
  {
    auto spool = gateway::Spool::open(c.spool, 0);
    ASSERT_TRUE(spool);
    for (int i = 0; i < 75; ++i) {
      auto ct = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.8." + std::to_string(i));
      if (i == 40) ct->getDataset()->putAndInsertString(DCM_Modality, "US");  // refused
      const fs::path file = dir_ / ("ct" + std::to_string(i) + ".dcm");
      testing::save(*ct, file);
      sent.push_back(read_bytes(file));
      ASSERT_TRUE(spool->accept(sent.back()));
    }
  }
  Running running(c, pipeline);
  ASSERT_TRUE(wait_until([&] {
    const auto st = gateway::Spool::open(c.spool, 0)->status();
    return st.incoming == 0 && st.quarantined == 1;
  })) << running.log.str();
  running.finish();
  ASSERT_TRUE(running.result) << running.result.error().message;
  EXPECT_EQ(running.result->processed, 74u);
  EXPECT_EQ(running.result->quarantined, 1u);
  EXPECT_EQ(count_files(c.output), 74u);
  for (std::size_t i = 0; i < sent.size(); ++i) {
    if (i == 40) continue;
    auto expected = pipeline.process_instance(sent[i]);
    ASSERT_TRUE(expected) << expected.error().message;
    EXPECT_EQ(read_bytes(c.output / expected->name), expected->bytes) << i;
  }
}

// The group commit's failure path: one output of a batch cannot be written (a file stands
// where its series folder should be). The batch's others are published whole, the failed one
// is neither published nor quarantined but kept in incoming/ and tried again, and published
// once the obstacle is gone; no temporary file is left anywhere.
TEST_F(GatewayRun, AnOutputThatCannotBeWrittenFailsAloneInItsBatchAndIsTriedAgain) {
  const auto pipeline = make_pipeline();
  auto c = config();
  c.workers = 1;  // one worker: the whole backlog is one batch
  std::vector<std::vector<std::uint8_t>> sent;
  {
    auto spool = gateway::Spool::open(c.spool, 0);
    ASSERT_TRUE(spool);
    for (int i = 0; i < 10; ++i) {
      auto ct = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.6." + std::to_string(i));
      if (i == 4) {  // a series (and study) of its own, whose folder is blocked below
        ct->getDataset()->putAndInsertString(DCM_StudyInstanceUID, "1.2.826.0.1.3680043.2.1125.6.100");
        ct->getDataset()->putAndInsertString(DCM_SeriesInstanceUID, "1.2.826.0.1.3680043.2.1125.6.101");
      }
      const fs::path file = dir_ / ("ct" + std::to_string(i) + ".dcm");
      testing::save(*ct, file);
      sent.push_back(read_bytes(file));
      ASSERT_TRUE(spool->accept(sent.back()));
    }
  }
  std::vector<pipeline::OutputInstance> expected;
  for (const auto& bytes : sent) {
    auto output = pipeline.process_instance(bytes);
    ASSERT_TRUE(output) << output.error().message;
    expected.push_back(std::move(*output));
  }
  const fs::path blocked = (c.output / expected[4].name).parent_path();
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (i != 4) {
      ASSERT_NE((c.output / expected[i].name).parent_path(), blocked);
    }
  }
  fs::create_directories(blocked.parent_path());
  { std::ofstream(blocked, std::ios::binary) << "in the way"; }

  Running running(c, pipeline);
  // The nine others published (and the file in the way), and only the failed one left in
  // incoming/: the batch has been settled.
  ASSERT_TRUE(wait_until([&] {
    return count_files(c.output) == 10 &&
           gateway::Spool::open(c.spool, 0)->status().incoming == 1;
  }));
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (i != 4) {
      EXPECT_EQ(read_bytes(c.output / expected[i].name), expected[i].bytes) << i;
    }
  }
  auto status = gateway::Spool::open(c.spool, 0)->status();
  EXPECT_EQ(status.incoming, 1u);  // the failed one only, kept
  EXPECT_EQ(status.quarantined, 0u);

  fs::remove(blocked);  // the obstacle is gone: the next try publishes it
  ASSERT_TRUE(wait_until([&] {
    return gateway::Spool::open(c.spool, 0)->status().incoming == 0;
  }));
  EXPECT_EQ(read_bytes(c.output / expected[4].name), expected[4].bytes);
  running.finish();
  ASSERT_TRUE(running.result) << running.result.error().message;
  EXPECT_EQ(running.result->processed, 10u);
  EXPECT_EQ(running.result->quarantined, 0u);
  EXPECT_NE(running.log.str().find("kept for a later try"), std::string::npos) << running.log.str();
  EXPECT_EQ(count_files(c.output), 10u);  // nothing else: no temporary file left over
  EXPECT_EQ(count_files(c.spool / "quarantine"), 0u);
}

// A folder flush of the output that fails (a fault injected into the group commit): the
// whole batch fails, nothing leaves incoming/, no temporary file is left, nothing is
// quarantined; once flushes succeed again the batch is processed again and published.
TEST_F(GatewayRun, AFailedFolderFlushFailsTheBatchAndItIsProcessedAgainLater) {
  const auto pipeline = make_pipeline();
  auto c = config();
  c.workers = 1;  // one worker: the whole backlog is one batch
  std::vector<std::vector<std::uint8_t>> sent;
  {
    auto spool = gateway::Spool::open(c.spool, 0);
    ASSERT_TRUE(spool);
    for (int i = 0; i < 6; ++i) {
      auto ct = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.5." + std::to_string(i));
      const fs::path file = dir_ / ("ct" + std::to_string(i) + ".dcm");
      testing::save(*ct, file);
      sent.push_back(read_bytes(file));
      ASSERT_TRUE(spool->accept(sent.back()));
    }
  }
  std::atomic<int> failed_flushes{0};
  const fs::path output = c.output;
  set_folder_flush_fault_for_testing([&failed_flushes, output](const fs::path& folder) -> Status {
    const auto rel = folder.lexically_relative(output);
    if (rel.empty() || *rel.begin() == "..") return {};
    ++failed_flushes;
    return fail(ErrorCode::io, "injected flush failure");
  });
  Running running(c, pipeline);
  // Two failed rounds: the first batch has been settled (kept) before the second began.
  const bool failed_twice = wait_until([&] { return failed_flushes.load() >= 2; });
  auto status = gateway::Spool::open(c.spool, 0)->status();
  set_folder_flush_fault_for_testing({});
  ASSERT_TRUE(failed_twice);
  EXPECT_EQ(status.incoming, 6u);
  EXPECT_EQ(status.quarantined, 0u);
  EXPECT_LE(count_files(c.output), 6u);  // names perhaps renamed, no temporary left

  ASSERT_TRUE(wait_until([&] {
    return gateway::Spool::open(c.spool, 0)->status().incoming == 0;
  }));
  running.finish();
  ASSERT_TRUE(running.result) << running.result.error().message;
  EXPECT_EQ(running.result->processed, 6u);
  EXPECT_EQ(running.result->quarantined, 0u);
  EXPECT_EQ(count_files(c.output), 6u);
  for (const auto& bytes : sent) {
    auto expected = pipeline.process_instance(bytes);
    ASSERT_TRUE(expected) << expected.error().message;
    EXPECT_EQ(read_bytes(c.output / expected->name), expected->bytes);
  }
  EXPECT_NE(running.log.str().find("kept for a later try"), std::string::npos) << running.log.str();
}

// Defacing over the network: a head series sent instance by instance is held until it has
// been quiet, defaced whole, and written as radguard deid writes the same files.
TEST_F(GatewayRun, DefacesAHeadSeriesOnceItIsQuietAsDeidDoes) {
  const auto pipeline = make_pipeline({"clean-recognizable-visual-features"});
  const auto head = testing::make_head_phantom(
      testing::PhantomContrast::ct, {66, 80, 84}, {3.0, 3.0, 3.0},
      {volume::Vec3{1, 0, 0}, volume::Vec3{0, 1, 0}, volume::Vec3{0, 0, 1}});
  const auto files = testing::write_series(head.volume, dir_ / "head", {});
  pipeline::DeidRun run;
  run.inputs = {dir_ / "head"};
  run.output = dir_ / "deid";
  run.progress = batch::ProgressDisplay::never;
  const auto expected = pipeline.run_deid(run);
  ASSERT_TRUE(expected) << expected.error().message;
  ASSERT_EQ(expected->count(deid::FileStatus::written), files.size());

  auto c = config();
  c.series_quiet = std::chrono::seconds(1);
  Running running(c, pipeline);
  const net::Peer me{c.ae_title, "127.0.0.1", c.port, {}, {}};
  ASSERT_TRUE(wait_until([&] { return static_cast<bool>(net::echo(me, "SENDER", 5)); }));
  auto statuses = net::store_files(me, "SENDER", files, 30);
  ASSERT_TRUE(statuses) << statuses.error().message;
  for (auto st : *statuses) EXPECT_EQ(st, net::kStatusSuccess);
  ASSERT_TRUE(wait_until([&] { return count_files(c.output) == files.size(); }))
      << running.log.str();
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "deid")) {
    if (!e.is_regular_file()) continue;
    const fs::path name = fs::relative(e.path(), dir_ / "deid");
    EXPECT_EQ(read_bytes(c.output / name), read_bytes(e.path())) << name;
  }
  running.finish();
  ASSERT_TRUE(running.result) << running.result.error().message;
  EXPECT_EQ(running.result->processed, files.size());
  EXPECT_TRUE(gateway::Spool::open(c.spool, 0)->incoming().empty());
}

TEST_F(GatewayRun, ForwardsFromThePersistentOutboxOnceTheDestinationIsUp) {
  const auto pipeline = make_pipeline();
  // The destination: a second gateway writing to a folder, not started yet.
  const auto dest = destination_config();
  auto c = config();
  c.output.clear();
  c.forward = net::Peer{"DEST", "127.0.0.1", dest.port, {}, {}};
  c.retry = {std::chrono::seconds(1), std::chrono::seconds(1)};
  Running running(c, pipeline);
  const net::Peer me{c.ae_title, "127.0.0.1", c.port, {}, {}};
  ASSERT_TRUE(wait_until([&] { return static_cast<bool>(net::echo(me, "SENDER", 5)); }));
  auto ct = testing::make_ct();
  testing::save(*ct, dir_ / "ct.dcm");
  ASSERT_TRUE(net::store_files(me, "SENDER", {dir_ / "ct.dcm"}, 10));
  // Destination down: the instance waits in the outbox with a failed attempt.
  ASSERT_TRUE(wait_until([&] {
    return gateway::Spool::open(c.spool, 0)->status().outbox_retrying == 1;
  }));
  // Up: the queue drains. The destination de-identifies again (same key: UIDs are mapped
  // once more), so compare counts.
  Running destination(dest, pipeline);
  ASSERT_TRUE(wait_until([&] { return count_files(dest.output) == 1; })) << running.log.str();
  ASSERT_TRUE(wait_until([&] { return gateway::Spool::open(c.spool, 0)->status().outbox == 0; }));
  running.finish();
  ASSERT_TRUE(running.result) << running.result.error().message;
  EXPECT_EQ(running.result->forwarded, 1u);
  EXPECT_GE(running.result->forward_failures, 1u);
}

// A backlog forwarded over several associations at once: every instance arrives once (the
// destination receives exactly as many as were sent) and leaves the outbox; none fails.
TEST_F(GatewayRun, ABacklogIsForwardedOverSeveralAssociationsEachInstanceOnce) {
  const auto pipeline = make_pipeline();
  const auto dest = destination_config();
  Running destination(dest, pipeline);
  auto c = config();
  c.output.clear();
  c.forward = net::Peer{"DEST", "127.0.0.1", dest.port, {}, {}};
  c.workers = 2;
  c.forward_associations = 3;
  c.forward_batch = 4;
  constexpr std::size_t kInstances = 30;
  {
    auto spool = gateway::Spool::open(c.spool, 0);
    ASSERT_TRUE(spool);
    for (std::size_t i = 0; i < kInstances; ++i) {
      auto ct = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.9." + std::to_string(i));
      const fs::path file = dir_ / ("ct" + std::to_string(i) + ".dcm");
      testing::save(*ct, file);
      ASSERT_TRUE(spool->accept(read_bytes(file)));
    }
  }
  const net::Peer there{"DEST", "127.0.0.1", dest.port, {}, {}};
  ASSERT_TRUE(wait_until([&] { return static_cast<bool>(net::echo(there, "SENDER", 5)); }));
  Running running(c, pipeline);
  ASSERT_TRUE(wait_until([&] {
    const auto st = gateway::Spool::open(c.spool, 0)->status();
    return st.incoming == 0 && st.outbox == 0;
  })) << running.log.str();
  ASSERT_TRUE(wait_until([&] { return count_files(dest.output) == kInstances; }))
      << destination.log.str();
  running.finish();
  destination.finish();
  ASSERT_TRUE(running.result) << running.result.error().message;
  EXPECT_EQ(running.result->forwarded, kInstances);
  EXPECT_EQ(running.result->forward_failures, 0u);
  ASSERT_TRUE(destination.result) << destination.result.error().message;
  EXPECT_EQ(destination.result->received, kInstances);
}

// A C-STORE SCP in a thread of the test that keeps what it receives in `folder` and counts it.
class CountingServer {
 public:
  CountingServer(fs::path folder, std::uint32_t dimse_timeout_s, unsigned max_associations = 8)
      : folder_(std::move(folder)) {
    fs::create_directories(folder_);
    net::ServerConfig config;
    config.port = free_port();
    config.max_associations = max_associations;
    config.ae_title = "DEST";
    config.dimse_timeout_s = dimse_timeout_s;
    port = config.port;
    auto made = net::StoreServer::create(config, [this](const net::StoreRequest&,
                                                        const net::ReceiveInto& receive) {
      const auto n = received.fetch_add(1);
      return receive(folder_ / ("got" + std::to_string(n) + ".dcm")) ? net::kStatusSuccess
                                                                     : net::kStatusCannotUnderstand;
    });
    EXPECT_TRUE(made);
    server_ = std::move(*made);
    thread_ = std::thread([this] { (void)server_->run(); });
  }
  ~CountingServer() {
    server_->stop();
    thread_.join();
  }
  std::uint16_t port = 0;
  std::atomic<unsigned> received{0};

 private:
  fs::path folder_;
  std::unique_ptr<net::StoreServer> server_;
  std::thread thread_;
};

// The forwarders' session: one association for batch after batch; a new one only for a
// context it was not offered (and that one offers every kind seen so far), or after release().
TEST_F(GatewayRun, AStoreSessionKeepsItsAssociationAcrossBatchesUntilReleased) {
  CountingServer server(dir_ / "got", 60);
  const net::Peer there{"DEST", "127.0.0.1", server.port, {}, {}};
  ASSERT_TRUE(wait_until([&] { return static_cast<bool>(net::echo(there, "SENDER", 5)); }));
  std::vector<fs::path> explicit_le, implicit_le;
  for (int i = 0; i < 3; ++i) {
    auto ct = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.7." + std::to_string(i));
    explicit_le.push_back(dir_ / ("e" + std::to_string(i) + ".dcm"));
    testing::save(*ct, explicit_le.back());
    implicit_le.push_back(dir_ / ("i" + std::to_string(i) + ".dcm"));
    testing::save(*ct, implicit_le.back(), EXS_LittleEndianImplicit);
  }
  auto session = net::StoreSession::create(there, "SENDER", 10);
  ASSERT_TRUE(session) << session.error().message;
  net::StoreSession& s = **session;
  const auto all_succeed = [](const Result<std::vector<std::uint16_t>>& statuses) {
    return statuses &&
           std::ranges::all_of(*statuses, [](auto st) { return st == net::kStatusSuccess; });
  };
  EXPECT_FALSE(s.is_open());
  for (const auto& file : explicit_le) EXPECT_TRUE(all_succeed(s.store({file}, {})));
  EXPECT_TRUE(s.is_open());
  EXPECT_EQ(s.associations_opened(), 1u);
  // Another transfer syntax: a new association, offering both.
  EXPECT_TRUE(all_succeed(s.store({implicit_le[0]}, {})));
  EXPECT_EQ(s.associations_opened(), 2u);
  EXPECT_TRUE(all_succeed(s.store({explicit_le[0], implicit_le[1]}, {})));
  EXPECT_EQ(s.associations_opened(), 2u);
  s.release();
  EXPECT_FALSE(s.is_open());
  EXPECT_TRUE(all_succeed(s.store({implicit_le[2]}, {})));
  EXPECT_EQ(s.associations_opened(), 3u);
  EXPECT_EQ(server.received.load(), 3u + 1u + 2u + 1u);
}

// The peer ends an association that sat idle (its own timeout): the next batch goes over a new
// one, each instance arriving once, none reported failed.
TEST_F(GatewayRun, AStoreSessionWhoseIdleAssociationThePeerEndedSendsOverANewOne) {
  CountingServer server(dir_ / "got", 1);  // drops an association silent for a second
  const net::Peer there{"DEST", "127.0.0.1", server.port, {}, {}};
  ASSERT_TRUE(wait_until([&] { return static_cast<bool>(net::echo(there, "SENDER", 5)); }));
  std::vector<fs::path> files;
  for (int i = 0; i < 2; ++i) {
    auto ct = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.8." + std::to_string(i));
    files.push_back(dir_ / ("ct" + std::to_string(i) + ".dcm"));
    testing::save(*ct, files.back());
  }
  auto session = net::StoreSession::create(there, "SENDER", 10);
  ASSERT_TRUE(session) << session.error().message;
  auto first = (*session)->store({files[0]}, {});
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->at(0), net::kStatusSuccess);
  std::this_thread::sleep_for(std::chrono::seconds(3));  // the peer gives up on it
  std::vector<std::size_t> answered;
  auto second =
      (*session)->store({files[1]}, [&](std::size_t i, std::uint16_t) { answered.push_back(i); });
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->at(0), net::kStatusSuccess);
  EXPECT_EQ(answered, std::vector<std::size_t>{0});
  EXPECT_EQ((*session)->associations_opened(), 2u);
  EXPECT_EQ(server.received.load(), 2u);
}

// The forwarder's own release of its kept association: after forward_idle with nothing to
// send, and on a graceful stop. The destination serves one association at a time, so another
// sender gets through only once the forwarder has let go.
TEST_F(GatewayRun, TheForwarderReleasesItsAssociationWhenIdleAndOnAStop) {
  const auto pipeline = make_pipeline();
  CountingServer server(dir_ / "got", 60, 1);
  const net::Peer there{"DEST", "127.0.0.1", server.port, {}, {}};
  ASSERT_TRUE(wait_until([&] { return static_cast<bool>(net::echo(there, "SENDER", 5)); }));
  auto ct = testing::make_ct();
  testing::save(*ct, dir_ / "ct.dcm");
  const auto another_sender_gets_through = [&] {
    return static_cast<bool>(net::store_files(there, "OTHER", {dir_ / "ct.dcm"}, 5));
  };
  for (const auto idle : {std::chrono::milliseconds(300), std::chrono::milliseconds(600000)}) {
    auto c = config();
    c.output.clear();
    c.spool = dir_ / ("spool" + std::to_string(idle.count()));
    c.forward = there;
    c.forward_idle = idle;
    const unsigned before = server.received.load();
    Running running(c, pipeline);
    const net::Peer me{c.ae_title, "127.0.0.1", c.port, {}, {}};
    ASSERT_TRUE(wait_until([&] { return static_cast<bool>(net::echo(me, "SENDER", 5)); }));
    ASSERT_TRUE(net::store_files(me, "SENDER", {dir_ / "ct.dcm"}, 10));
    ASSERT_TRUE(wait_until([&] { return server.received.load() == before + 1; }))
        << running.log.str();
    if (idle.count() < 1000) {
      // Held for 60 s by the destination's own timeout if the forwarder kept it.
      EXPECT_TRUE(wait_until(another_sender_gets_through)) << running.log.str();
    } else {
      EXPECT_FALSE(another_sender_gets_through());  // kept: the pool of one is taken
      running.finish();
      EXPECT_TRUE(wait_until(another_sender_gets_through)) << running.log.str();
    }
    running.finish();
    ASSERT_TRUE(running.result) << running.result.error().message;
  }
}

// 0 releases the forwarder's association after every batch; a negative idle time is refused.
TEST_F(GatewayRun, RefusesANegativeForwardIdleTime) {
  const auto pipeline = make_pipeline();
  auto c = config();
  c.output.clear();
  c.forward = net::Peer{"DEST", "127.0.0.1", 104, {}, {}};
  c.forward_idle = std::chrono::milliseconds(-1);
  const auto checked = gateway::check_route(c, pipeline);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code, ErrorCode::usage);
}

TEST_F(GatewayRun, RefusesZeroForwardAssociations) {
  const auto pipeline = make_pipeline();
  auto c = config();
  c.output.clear();
  c.forward = net::Peer{"DEST", "127.0.0.1", 104, {}, {}};
  c.forward_associations = 0;
  const auto checked = gateway::check_route(c, pipeline);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code, ErrorCode::usage);
}

// A notice given after a waiter read the generation, before it began to wait (while it looked
// for work and found none), wakes it at once: it is not lost for the whole timeout.
TEST(GatewaySignal, ANoticeGivenWhileTheWaiterLookedIsNotLost) {
  gateway::Signal signal;
  const auto seen = signal.generation();
  signal.notify();  // between the look and the wait
  const auto before = std::chrono::steady_clock::now();
  signal.wait_for(seen, std::chrono::seconds(60));
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(30));
  // A notice from another thread wakes a waiter that has seen none.
  const auto now_seen = signal.generation();
  std::thread notifier([&] { signal.notify(); });
  signal.wait_for(now_seen, std::chrono::seconds(60));
  notifier.join();
  EXPECT_NE(signal.generation(), now_seen);
}

// A peer address not on the allow-list is refused at association, whatever its AE title;
// a listed network is served. The address is read from the connection (loopback here).
TEST_F(GatewayRun, RefusesPeersWhoseAddressIsNotAllowed) {
  const auto pipeline = make_pipeline();
  auto c = config();
  c.allowed_hosts = {*net::parse_host_rule("192.0.2.0/24")};
  {
    Running running(c, pipeline);
    const net::Peer me{c.ae_title, "127.0.0.1", c.port, {}, {}};
    // Up (listening) and refusing: the association is rejected, not the connection.
    std::string why;
    EXPECT_TRUE(wait_until([&] {
      const auto echoed = net::echo(me, "SENDER", 5);
      why = echoed ? "served" : echoed.error().message;
      return why.find("ejected") != std::string::npos;
    })) << why;
    auto ct = testing::make_ct();
    testing::save(*ct, dir_ / "ct.dcm");
    EXPECT_FALSE(net::store_files(me, "SENDER", {dir_ / "ct.dcm"}, 5));
    running.finish();
    ASSERT_TRUE(running.result) << running.result.error().message;
    EXPECT_EQ(running.result->received, 0u);
    EXPECT_NE(running.log.str().find("refused an association from 127.0.0.1: the address is "
                                     "not allowed"),
              std::string::npos)
        << running.log.str();
  }
  c.allowed_hosts = {*net::parse_host_rule("192.0.2.0/24"), *net::parse_host_rule("127.0.0.0/8")};
  Running running(c, pipeline);
  const net::Peer me{c.ae_title, "127.0.0.1", c.port, {}, {}};
  ASSERT_TRUE(wait_until([&] { return static_cast<bool>(net::echo(me, "SENDER", 5)); }));
}

// An output name already published with other bytes is a conflict: the instance is
// quarantined, the file is not replaced, and the reason does not offer an --overwrite the
// gateway does not have.
TEST_F(GatewayRun, AConflictingOutputIsQuarantinedWithAReasonTheGatewayCanHonour) {
  const auto pipeline = make_pipeline();
  auto c = config();
  Running running(c, pipeline);
  const net::Peer me{c.ae_title, "127.0.0.1", c.port, {}, {}};
  ASSERT_TRUE(wait_until([&] { return static_cast<bool>(net::echo(me, "SENDER", 5)); }));
  auto ct = testing::make_ct();
  testing::save(*ct, dir_ / "ct.dcm");
  const auto expected = pipeline.process_instance(read_bytes(dir_ / "ct.dcm"));
  ASSERT_TRUE(expected) << expected.error().message;
  fs::create_directories((c.output / expected->name).parent_path());
  {
    std::ofstream(c.output / expected->name, std::ios::binary) << "another object";
  }
  ASSERT_TRUE(net::store_files(me, "SENDER", {dir_ / "ct.dcm"}, 10));
  ASSERT_TRUE(wait_until([&] {
    return gateway::Spool::open(c.spool, 0)->status().quarantined == 1;
  })) << running.log.str();
  const auto status = gateway::Spool::open(c.spool, 0)->status();
  ASSERT_EQ(status.last_quarantined.size(), 1u);
  const std::string& reason = status.last_quarantined[0].reason;
  EXPECT_EQ(reason.find("--overwrite"), std::string::npos) << reason;
  EXPECT_NE(reason.find("not replaced"), std::string::npos) << reason;
  EXPECT_EQ(read_bytes(c.output / expected->name), bytes_of("another object"));
}

TEST_F(GatewayRun, AFullSpoolAnswersOutOfResourcesAndKeepsNothing) {
  const auto pipeline = make_pipeline();
  auto c = config();
  c.min_free_bytes = std::uint64_t{1} << 62;  // more than any disk: the spool is "full"
  Running running(c, pipeline);
  const net::Peer me{c.ae_title, "127.0.0.1", c.port, {}, {}};
  ASSERT_TRUE(wait_until([&] { return static_cast<bool>(net::echo(me, "SENDER", 5)); }));
  auto ct = testing::make_ct();
  testing::save(*ct, dir_ / "ct.dcm");
  // Two in one association: the second is still answered (the association goes on).
  auto statuses = net::store_files(me, "SENDER", {dir_ / "ct.dcm", dir_ / "ct.dcm"}, 10);
  ASSERT_TRUE(statuses) << statuses.error().message;
  EXPECT_EQ(*statuses, (std::vector<std::uint16_t>{net::kStatusOutOfResources,
                                                   net::kStatusOutOfResources}));
  EXPECT_EQ(count_files(c.spool / "incoming"), 0u);
  running.finish();
  ASSERT_TRUE(running.result);
  EXPECT_EQ(running.result->refused, 2u);
  EXPECT_EQ(running.result->received, 0u);
}

TEST_F(GatewayRun, AFullAssociationPoolRefusesAtOnceAndServesAgainOnceFree) {
  const auto pipeline = make_pipeline();
  auto c = config();
  c.max_associations = 1;
  Running running(c, pipeline);
  const net::Peer me{c.ae_title, "127.0.0.1", c.port, {}, {}};
  ASSERT_TRUE(wait_until([&] { return static_cast<bool>(net::echo(me, "SENDER", 5)); }));
  // One association held open fills the pool. The echo's association above can hold its
  // slot a moment after the echo returns (until the server's thread has seen the release),
  // and the holder was then refused (a CI rehearsal on a loaded machine): it tries again
  // until the pool takes it.
  std::unique_ptr<DcmSCU> holder;
  ASSERT_TRUE(wait_until([&] {
    holder = std::make_unique<DcmSCU>();
    holder->setAETitle("HOLDER");
    holder->setPeerAETitle(c.ae_title.c_str());
    holder->setPeerHostName("127.0.0.1");
    holder->setPeerPort(c.port);
    OFList<OFString> syntaxes;
    syntaxes.push_back(UID_LittleEndianImplicitTransferSyntax);
    holder->addPresentationContext(UID_VerificationSOPClass, syntaxes);
    return holder->initNetwork().good() && holder->negotiateAssociation().good();
  }));
  const auto started = std::chrono::steady_clock::now();
  // A hang would last the echo's whole 30 s timeout; a refusal comes at once. The margin is
  // wide because a loaded CI machine once took more than 3 s to answer.
  const auto refused = net::echo(me, "SENDER", 30);
  EXPECT_FALSE(refused);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(15));
  ASSERT_TRUE(holder->releaseAssociation().good());
  EXPECT_TRUE(wait_until([&] { return static_cast<bool>(net::echo(me, "SENDER", 5)); }));
}

}  // namespace
}  // namespace radguard
