// radguard gateway as a Query/Retrieve SCP: matching (PS3.4 C.2.2.2) and the answers over a
// released folder, on this project's own fixtures (support/fixtures.hpp: make_ct); the network
// side against DCMTK's findscu/movescu is tests/gateway_qr_test.sh.
#include <gtest/gtest.h>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <tuple>

#include "gateway/gateway.hpp"
#include "gateway/query_scp.hpp"
#include "pipeline/pipeline.hpp"
#include "support/fixtures.hpp"

namespace radguard {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr std::uint32_t kPatientID = 0x00100020, kPatientName = 0x00100010,
                        kStudyDate = 0x00080020, kStudyUID = 0x0020000D, kSopUID = 0x00080018,
                        kModality = 0x00080060, kStudyInstances = 0x00201208,
                        kModalitiesInStudy = 0x00080061, kPatientStudies = 0x00201200,
                        kPatientInstances = 0x00201204;

std::string value_of(const net::QueryMatch& match, std::uint32_t tag) {
  for (const auto& key : match)
    if (key.tag == tag) return key.value;
  return "<absent>";
}

TEST(GatewayQuery, KeysMatchAsPs34Says) {
  EXPECT_TRUE(gateway::key_matches(kPatientID, "", "ANY"));       // universal
  EXPECT_TRUE(gateway::key_matches(kPatientID, "  ", "ANY"));     // padding only: universal
  EXPECT_TRUE(gateway::key_matches(kPatientID, "AB12", "AB12"));
  EXPECT_FALSE(gateway::key_matches(kPatientID, "AB1", "AB12"));  // single value: exact
  EXPECT_TRUE(gateway::key_matches(kPatientID, "AB*", "AB12"));
  EXPECT_TRUE(gateway::key_matches(kPatientID, "A?1*", "AB12"));
  EXPECT_FALSE(gateway::key_matches(kPatientID, "B*", "AB12"));
  EXPECT_TRUE(gateway::key_matches(kPatientName, "DOE^*", "DOE^JOHN"));
  EXPECT_TRUE(gateway::key_matches(kStudyUID, "1.2\\1.3", "1.3"));  // UID list
  EXPECT_FALSE(gateway::key_matches(kStudyUID, "1.*", "1.3"));      // no wildcards in UIDs
  EXPECT_TRUE(gateway::key_matches(kStudyDate, "20190101-20191231", "20190315"));
  EXPECT_TRUE(gateway::key_matches(kStudyDate, "-20190315", "20190315"));
  EXPECT_TRUE(gateway::key_matches(kStudyDate, "2019-", "20190315"));
  EXPECT_FALSE(gateway::key_matches(kStudyDate, "20200101-", "20190315"));
  EXPECT_FALSE(gateway::key_matches(kStudyDate, "20190101-20191231", ""));
  EXPECT_TRUE(gateway::key_matches(0x00080008, "AXIAL", "ORIGINAL\\PRIMARY\\AXIAL"));
}

class GatewayQueryFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    // Two patients: PID1 with two instances of one study, PID2 with one; and a temporary
    // file (a publish under way) that is never answered.
    for (const auto& [patient, sop, name] :
         {std::tuple{"PID1", "1.2.826.0.1.3680043.2.1125.1.1", "a/s/1.dcm"},
          std::tuple{"PID1", "1.2.826.0.1.3680043.2.1125.1.2", "a/s/2.dcm"},
          std::tuple{"PID2", "1.2.826.0.1.3680043.2.1125.1.3", "b/s/3.dcm"}}) {
      auto file = testing::make_ct(patient, sop);
      if (std::string_view(patient) == "PID2")
        file->getDataset()->putAndInsertString(DCM_StudyInstanceUID, "1.2.826.0.1.3680043.2.1125.2.2");
      fs::create_directories((dir_ / "out" / name).parent_path());
      testing::save(*file, dir_ / "out" / name);
    }
    fs::copy_file(dir_ / "out/a/s/1.dcm", dir_ / "out/a/s/.radguard-tmp-4.dcm");
  }
  net::QueryRequest request(net::QueryLevel level, std::vector<net::QueryKey> keys) {
    return {"QUERIER", net::QueryModel::study_root, level, std::move(keys)};
  }
  TempDir dir_;
};

TEST_F(GatewayQueryFolder, StudiesAreAnsweredWithCountsAndTheirUniqueKey) {
  auto found = gateway::find_released(
      dir_ / "out",
      request(net::QueryLevel::study,
              {{kPatientID, "PID1"}, {kStudyInstances, ""}, {kModalitiesInStudy, ""}}),
      "RG");
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(value_of((*found)[0], kPatientID), "PID1");
  EXPECT_EQ(value_of((*found)[0], kStudyInstances), "2");  // the temporary file is not counted
  EXPECT_EQ(value_of((*found)[0], kModalitiesInStudy), "CT");
  EXPECT_EQ(value_of((*found)[0], kStudyUID), "1.2.826.0.1.3680043.2.1125.2.1");  // added
}

TEST_F(GatewayQueryFolder, LevelsWildcardsRangesAndNoMatch) {
  const auto count = [&](net::QueryLevel level, std::vector<net::QueryKey> keys) {
    auto found = gateway::find_released(dir_ / "out", request(level, std::move(keys)), "RG");
    EXPECT_TRUE(found);
    return found ? found->size() : 99u;
  };
  EXPECT_EQ(count(net::QueryLevel::study, {{kPatientID, "PID*"}}), 2u);
  EXPECT_EQ(count(net::QueryLevel::image, {{kPatientID, "*"}, {kSopUID, ""}}), 3u);
  EXPECT_EQ(count(net::QueryLevel::image, {{kStudyDate, "20190101-20191231"}}), 3u);
  EXPECT_EQ(count(net::QueryLevel::study, {{kStudyDate, "2020-"}}), 0u);
  EXPECT_EQ(count(net::QueryLevel::study, {{kPatientName, "SOMEONE^ELSE"}}), 0u);
  EXPECT_EQ(count(net::QueryLevel::study, {{kModalitiesInStudy, "MR"}}), 0u);
  EXPECT_EQ(count(net::QueryLevel::study, {{kModality, "CT"}}), 2u);
  // A folder that does not exist yet (nothing released): no answer, no failure.
  auto none = gateway::find_released(dir_ / "nothing", request(net::QueryLevel::study, {}), "RG");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(GatewayQueryFolder, APatientWithTwoStudiesIsOneAnswerCountingBoth) {
  auto second = testing::make_ct("PID1", "1.2.826.0.1.3680043.2.1125.1.4");
  second->getDataset()->putAndInsertString(DCM_StudyInstanceUID, "1.2.826.0.1.3680043.2.1125.2.3");
  fs::create_directories(dir_ / "out/a/t");
  testing::save(*second, dir_ / "out/a/t/4.dcm");
  auto found = gateway::find_released(
      dir_ / "out",
      {"QUERIER", net::QueryModel::patient_root, net::QueryLevel::patient,
       {{kPatientID, ""}, {kPatientStudies, ""}, {kPatientInstances, ""}}},
      "RG");
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_EQ(found->size(), 2u);  // PID1 and PID2, each once
  EXPECT_EQ(value_of((*found)[0], kPatientID), "PID1");
  EXPECT_EQ(value_of((*found)[0], kPatientStudies), "2");
  EXPECT_EQ(value_of((*found)[0], kPatientInstances), "3");
  EXPECT_EQ(value_of((*found)[1], kPatientID), "PID2");
  EXPECT_EQ(value_of((*found)[1], kPatientStudies), "1");
  // At study level the two studies stay two answers.
  auto studies = gateway::find_released(
      dir_ / "out", request(net::QueryLevel::study, {{kPatientID, "PID1"}}), "RG");
  ASSERT_TRUE(studies);
  EXPECT_EQ(studies->size(), 2u);
}

TEST_F(GatewayQueryFolder, HiddenFoldersAndSymbolicLinksAreNotAnswered) {
  // An instance outside the released folder (as the spool's would be), reached by a link to
  // the file and by a link to its folder; and one in a dot-named folder.
  auto outside = testing::make_ct("PID9", "1.2.826.0.1.3680043.2.1125.1.9");
  fs::create_directories(dir_ / "spool/incoming");
  testing::save(*outside, dir_ / "spool/incoming/9.dcm");
  fs::create_symlink(dir_ / "spool/incoming/9.dcm", dir_ / "out/a/s/9.dcm");
  fs::create_directory_symlink(dir_ / "spool/incoming", dir_ / "out/linked");
  fs::create_directories(dir_ / "out/.hidden");
  testing::save(*outside, dir_ / "out/.hidden/9.dcm");
  auto found = gateway::find_released(
      dir_ / "out", request(net::QueryLevel::image, {{kPatientID, "*"}, {kSopUID, ""}}), "RG");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->size(), 3u);
  for (const auto& match : *found) EXPECT_NE(value_of(match, kPatientID), "PID9");
}

TEST_F(GatewayQueryFolder, AMoveSendsTheMatchingInstancesOnly) {
  auto files = gateway::released_files(
      dir_ / "out",
      request(net::QueryLevel::study, {{kStudyUID, "1.2.826.0.1.3680043.2.1125.2.1"}}));
  ASSERT_TRUE(files);
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].string(), (dir_ / "out/a/s/1.dcm").string());
  EXPECT_EQ((*files)[1].string(), (dir_ / "out/a/s/2.dcm").string());
}

TEST_F(GatewayQueryFolder, AnUnknownMoveDestinationIsRefusedAsNotFound) {
  auto service = gateway::make_query_service(
      {dir_ / "out", "RG", {{"DEST", "127.0.0.1", 104, std::nullopt, {}}}, std::nullopt, 1}, {});
  auto refused = service->move(request(net::QueryLevel::study, {{kPatientID, "PID1"}}), "OTHER");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::not_found);  // answered 0xA801
  auto planned = service->move(request(net::QueryLevel::study, {{kPatientID, "PID1"}}), "DEST");
  ASSERT_TRUE(planned);
  EXPECT_EQ(planned->files.size(), 2u);
  EXPECT_EQ(planned->destination.port, 104);
}

TEST_F(GatewayQueryFolder, MovesUseTlsExactlyWhenTheListenerDoes) {
  const net::TlsFiles own{dir_ / "dest.pem", dir_ / "dest.key", dir_ / "ca.pem"};
  const net::TlsFiles listener{dir_ / "gw.pem", dir_ / "gw.key", dir_ / "ca.pem"};
  const net::Peer dest{"DEST", "127.0.0.1", 104, own, {}};
  const net::QueryRequest all = request(net::QueryLevel::study, {{kPatientID, "PID1"}});
  auto plain = gateway::make_query_service({dir_ / "out", "RG", {dest}, std::nullopt, 1}, {});
  auto planned = plain->move(all, "DEST");
  ASSERT_TRUE(planned);
  EXPECT_FALSE(planned->destination.tls);  // a plain listener moves in plain
  auto tls = gateway::make_query_service({dir_ / "out", "RG", {dest}, listener, 1}, {});
  planned = tls->move(all, "DEST");
  ASSERT_TRUE(planned);
  ASSERT_TRUE(planned->destination.tls);
  EXPECT_EQ(planned->destination.tls->certificate, listener.certificate);
}

std::uint16_t unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A query service behind a listener on a free loopback port, served on its own thread until
// the end of the scope.
class ServedQueries {
 public:
  ServedQueries(std::shared_ptr<net::QueryService> service, unsigned max_associations,
                std::function<void(const std::string&)> log = {},
                std::uint32_t dimse_timeout_s = 60)
      : ServedQueries(
            [&] {
              net::ServerConfig config;
              config.max_associations = max_associations;
              config.dimse_timeout_s = dimse_timeout_s;
              config.query = std::move(service);
              config.log = std::move(log);
              return config;
            }(),
            [](const net::StoreRequest&, const net::ReceiveInto&) { return net::kStatusSuccess; }) {}
  // A listener with these settings (its port and AE title chosen here) and C-STORE handler.
  ServedQueries(net::ServerConfig config, net::StoreHandler handler) {
    config.port = unused_port();
    config.ae_title = "RG";
    peer_ = net::Peer{"RG", "127.0.0.1", config.port, std::nullopt, {}};
    server_ = net::StoreServer::create(std::move(config), std::move(handler));
    if (server_) serving_ = std::thread([this] { (void)(*server_)->run(); });
  }
  ~ServedQueries() {
    if (server_) (*server_)->stop();
    if (serving_.joinable()) serving_.join();
  }
  ServedQueries(const ServedQueries&) = delete;
  ServedQueries& operator=(const ServedQueries&) = delete;
  [[nodiscard]] const Result<std::unique_ptr<net::StoreServer>>& server() const { return server_; }
  [[nodiscard]] const net::Peer& peer() const { return peer_; }

 private:
  Result<std::unique_ptr<net::StoreServer>> server_ = fail(ErrorCode::internal, "not created");
  std::thread serving_;
  net::Peer peer_;
};

// More queries at once than the service's bound are refused as out of resources (0xA700)
// while the first is served; once it ends, a query is answered again.
TEST(GatewayQueryNet, QueriesBeyondTheBoundAreRefusedOutOfResources) {
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  auto service = std::make_shared<net::QueryService>();
  service->ae_title = "RG";
  service->max_concurrent = 1;
  std::atomic<int> calls{0};
  service->find = [&](const net::QueryRequest&) -> Result<std::vector<net::QueryMatch>> {
    if (calls.fetch_add(1) == 0) {
      entered.set_value();
      released.wait();
    }
    return std::vector<net::QueryMatch>{};
  };
  const ServedQueries served(service, 4);
  ASSERT_TRUE(served.server()) << served.server().error().message;
  const net::Peer& peer = served.peer();
  Result<std::vector<std::string>> first = fail(ErrorCode::internal, "not run");
  std::thread querying([&] {
    for (int i = 0; i < 100 && calls.load() == 0; ++i) {
      first = net::find_studies(peer, "QUERIER", net::StudyKey::patient_id, "A", 20);
      if (calls.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  auto waited = entered.get_future().wait_for(std::chrono::seconds(20));
  const bool in_flight = waited == std::future_status::ready;
  Result<std::vector<std::string>> second = fail(ErrorCode::internal, "not run");
  if (in_flight) second = net::find_studies(peer, "QUERIER", net::StudyKey::patient_id, "B", 20);
  release.set_value();
  querying.join();
  auto third = net::find_studies(peer, "QUERIER", net::StudyKey::patient_id, "C", 20);
  ASSERT_TRUE(in_flight);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("0xA700"), std::string::npos) << second.error().message;
  EXPECT_TRUE(first) << first.error().message;
  EXPECT_TRUE(third) << third.error().message;
}

// A query matching more than kMaxFindMatches is answered that many times and then ended with
// 0xA700, so the querier learns the list is cut short instead of waiting on an unbounded
// stream; exactly the bound is a complete answer.
TEST(GatewayQueryNet, MatchesBeyondTheCapEndTheAnswerOutOfResources) {
  auto service = std::make_shared<net::QueryService>();
  service->ae_title = "RG";
  std::atomic<std::size_t> how_many{0};
  service->find = [&](const net::QueryRequest&) -> Result<std::vector<net::QueryMatch>> {
    std::vector<net::QueryMatch> matches(how_many.load());
    for (std::size_t i = 0; i < matches.size(); ++i)
      matches[i] = {{kPatientID, "A"},
                    {kStudyUID, "1.2.826.0.1.3680043.10.1." + std::to_string(i + 1)}};
    return matches;
  };
  const ServedQueries served(service, net::ServerConfig{}.max_associations);
  ASSERT_TRUE(served.server()) << served.server().error().message;
  const net::Peer& peer = served.peer();
  how_many = net::kMaxFindMatches;
  auto at_cap = net::find_studies(peer, "QUERIER", net::StudyKey::patient_id, "A", 60);
  // The listener opens its port in run(), on the other thread.
  for (int i = 0; i < 100 && !at_cap && at_cap.error().message.find("refused") != std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    at_cap = net::find_studies(peer, "QUERIER", net::StudyKey::patient_id, "A", 60);
  }
  how_many = net::kMaxFindMatches + 1;
  auto over_cap = net::find_studies(peer, "QUERIER", net::StudyKey::patient_id, "A", 60);
  ASSERT_TRUE(at_cap) << at_cap.error().message;
  EXPECT_EQ(at_cap->size(), net::kMaxFindMatches);
  ASSERT_FALSE(over_cap);
  EXPECT_NE(over_cap.error().message.find("0xA700"), std::string::npos)
      << over_cap.error().message;
}

// --- a hostile querier on a raw socket: the PDUs of PS3.8 written by hand, since DCMTK's SCU
// parses what it sends and holds it whole.

std::string be16(std::uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }
std::string be32(std::uint32_t v) {
  return be16(static_cast<std::uint16_t>(v >> 16)) + be16(static_cast<std::uint16_t>(v));
}
std::string le16(std::uint16_t v) { return {static_cast<char>(v), static_cast<char>(v >> 8)}; }
std::string le32(std::uint32_t v) {
  return le16(static_cast<std::uint16_t>(v)) + le16(static_cast<std::uint16_t>(v >> 16));
}

// An item of an A-ASSOCIATE-RQ (PS3.8 9.3.2).
std::string item(std::uint8_t type, const std::string& body) {
  return std::string{static_cast<char>(type), '\0'} +
         be16(static_cast<std::uint16_t>(body.size())) + body;
}
std::string pdu(std::uint8_t type, const std::string& body) {
  return std::string{static_cast<char>(type), '\0'} +
         be32(static_cast<std::uint32_t>(body.size())) + body;
}
// A P-DATA-TF PDU of one PDV on presentation context 1; control: bit 0 command, bit 1 last.
std::string p_data(std::uint8_t control, const std::string& fragment) {
  return pdu(0x04, be32(static_cast<std::uint32_t>(fragment.size() + 2)) + '\1' +
                       static_cast<char>(control) + fragment);
}
// An element in implicit VR little endian (commands always are; so is the context proposed).
std::string element(std::uint16_t group, std::uint16_t number, const std::string& value) {
  return le16(group) + le16(number) + le32(static_cast<std::uint32_t>(value.size())) + value;
}

constexpr const char* kStudyRootFind = "1.2.840.10008.5.1.4.1.2.2.1";
constexpr const char* kCtImageStorage = "1.2.840.10008.5.1.4.1.1.2";
constexpr const char* kMrImageStorage = "1.2.840.10008.5.1.4.1.1.4";

// An A-ASSOCIATE-RQ proposing one presentation context (id 1, implicit VR little endian) for
// `abstract_syntax`.
std::string associate_rq(const std::string& called, const std::string& calling,
                         const std::string& abstract_syntax = kStudyRootFind) {
  const auto ae = [](std::string title) { return title.append(16 - title.size(), ' '); };
  std::string body = be16(1) + be16(0) + ae(called) + ae(calling) + std::string(32, '\0');
  body += item(0x10, "1.2.840.10008.3.1.1.1");
  body += item(0x20, std::string{'\1', '\0', '\0', '\0'} + item(0x30, abstract_syntax) +
                         item(0x40, "1.2.840.10008.1.2"));
  body += item(0x50, item(0x51, be32(16384)) + item(0x52, "1.2.826.0.1.3680043.9.9999"));
  return pdu(0x01, body);
}

std::string even(std::string uid) {
  if (uid.size() % 2 != 0) uid += '\0';
  return uid;
}

// A command set: its group length, then `rest` (elements in tag order after (0000,0000)).
std::string command(const std::string& rest) {
  return element(0, 0x0000, le32(static_cast<std::uint32_t>(rest.size()))) + rest;
}

std::string find_rq_command(const std::string& sop_class = kStudyRootFind) {
  return command(element(0, 0x0002, even(sop_class)) + element(0, 0x0100, le16(0x0020)) +
                 element(0, 0x0110, le16(1)) + element(0, 0x0700, le16(0)) +
                 element(0, 0x0800, le16(0x0000)));  // a data set follows
}

std::string store_rq_command(const std::string& sop_class) {
  return command(element(0, 0x0002, even(sop_class)) + element(0, 0x0100, le16(0x0001)) +
                 element(0, 0x0110, le16(1)) + element(0, 0x0700, le16(0)) +
                 element(0, 0x0800, le16(0x0000)) +
                 element(0, 0x1000, even("1.2.826.0.1.3680043.10.1.99")));
}

bool read_exactly(int fd, char* out, std::size_t n) {
  while (n > 0) {
    const ssize_t got = ::recv(fd, out, n, 0);
    if (got <= 0) return false;
    out += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

// The next PDU's type and body; nullopt when the connection ended.
std::optional<std::pair<std::uint8_t, std::string>> read_pdu(int fd) {
  char head[6];
  if (!read_exactly(fd, head, 6)) return std::nullopt;
  const std::uint32_t length = (std::uint32_t{static_cast<std::uint8_t>(head[2])} << 24) |
                               (std::uint32_t{static_cast<std::uint8_t>(head[3])} << 16) |
                               (std::uint32_t{static_cast<std::uint8_t>(head[4])} << 8) |
                               std::uint32_t{static_cast<std::uint8_t>(head[5])};
  if (length > (1u << 20)) return std::nullopt;
  std::string body(length, '\0');
  if (!read_exactly(fd, body.data(), length)) return std::nullopt;
  return std::pair{static_cast<std::uint8_t>(head[0]), std::move(body)};
}

// The Status (0000,0900) of a P-DATA-TF body holding one command PDV; nullopt when absent.
std::optional<std::uint16_t> status_of(const std::string& body) {
  if (body.size() < 6) return std::nullopt;
  const std::string command = body.substr(6);
  for (std::size_t pos = 0; pos + 8 <= command.size();) {
    const auto u8 = [&](std::size_t at) {
      return std::uint32_t{static_cast<std::uint8_t>(command[at])};
    };
    const std::uint32_t tag = u8(pos) | u8(pos + 1) << 8 | u8(pos + 2) << 16 | u8(pos + 3) << 24;
    const std::uint32_t length =
        u8(pos + 4) | u8(pos + 5) << 8 | u8(pos + 6) << 16 | u8(pos + 7) << 24;
    if (tag == 0x09000000 && length == 2 && pos + 10 <= command.size())
      return static_cast<std::uint16_t>(u8(pos + 8) | u8(pos + 9) << 8);
    pos += 8 + length;
  }
  return std::nullopt;
}

struct RawExchange {
  bool associated = false;
  std::size_t data_sent = 0;  // bytes of data set the socket took
  std::optional<std::uint16_t> status;
  bool aborted = false;  // the node sent an A-ABORT
};

// Associates with `port` as QUERIER proposing `abstract_syntax`, sends `command_set` and then
// a data set fragment by fragment (`next_fragment` gives each, and whether it is the last),
// `pause` apart, while another thread reads the answers: the status of the first answer, if
// any came, and whether the node aborted.
using NextFragment = std::function<std::pair<std::string, bool>()>;
RawExchange exchange(std::uint16_t port, const std::string& abstract_syntax,
                     const std::string& command_set, const NextFragment& next_fragment,
                     std::chrono::milliseconds pause = std::chrono::milliseconds(0)) {
  RawExchange outcome;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval limit{30, 0};  // a test that fails, never one that hangs
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const auto send_all = [&](const std::string& bytes) {
    return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  };
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      !send_all(associate_rq("RG", "QUERIER", abstract_syntax))) {
    ::close(fd);
    return outcome;
  }
  const auto accepted = read_pdu(fd);
  outcome.associated = accepted && accepted->first == 0x02;
  if (!outcome.associated) {
    ::close(fd);
    return outcome;
  }
  std::atomic<bool> over{false}, answered{false};
  std::thread reader([&] {
    while (auto next = read_pdu(fd)) {
      if (next->first == 0x07) outcome.aborted = true;
      if (next->first != 0x04) break;  // an A-ABORT or A-RELEASE: the association is over
      if (!outcome.status) outcome.status = status_of(next->second);
      answered = true;
    }
    over = true;
  });
  if (send_all(p_data(0x03, command_set))) {
    for (bool last = false; !last && !over;) {
      auto [fragment, is_last] = next_fragment();
      last = is_last;
      if (!send_all(p_data(last ? 0x02 : 0x00, fragment))) break;
      outcome.data_sent += fragment.size();
      if (pause.count() > 0 && !last) std::this_thread::sleep_for(pause);
    }
  }
  // The answer to a whole data set, before the association is let go.
  for (int i = 0; i < 100 && !answered && !over; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::shutdown(fd, SHUT_WR);
  reader.join();
  ::close(fd);
  return outcome;
}

struct HostileQuery {
  bool associated = false;
  std::size_t identifier_sent = 0;  // bytes of identifier the socket took
  std::optional<std::uint16_t> status;
};

// Sends a C-FIND request (on a context for `abstract_syntax`) and then an identifier of
// `identifier_bytes` (its one element's value, 'A's) in fragments of `fragment_bytes`, `pause`
// apart: exchange().
HostileQuery send_hostile_find(std::uint16_t port, std::size_t identifier_bytes,
                               std::size_t fragment_bytes = 16000,
                               std::chrono::milliseconds pause = std::chrono::milliseconds(0),
                               const std::string& abstract_syntax = kStudyRootFind) {
  const std::string level = element(0x0008, 0x0052, "STUDY ");
  std::string stream = level + element(0x0010, 0x0020, "");
  const std::uint32_t value = static_cast<std::uint32_t>(identifier_bytes - stream.size());
  stream.replace(stream.size() - 4, 4, le32(value));  // the value follows, fragment by fragment
  std::size_t left = identifier_bytes;
  std::string first = stream;
  const NextFragment next = [&] {
    std::string fragment = std::move(first);
    first.clear();
    if (fragment.empty()) fragment.assign(std::min<std::size_t>(fragment_bytes, left), 'A');
    left -= fragment.size();
    return std::pair{fragment, left == 0};
  };
  const RawExchange done = exchange(port, abstract_syntax, find_rq_command(), next, pause);
  return {done.associated, done.data_sent, done.status};
}

// A find service that counts the requests its handler was asked and keeps the listener's log
// lines, for the tests of identifiers refused before the handler.
struct CountedFinds {
  CountedFinds() {
    service->ae_title = "RG";
    service->find = [this](const net::QueryRequest&) -> Result<std::vector<net::QueryMatch>> {
      ++handled;
      return std::vector<net::QueryMatch>{};
    };
  }
  CountedFinds(const CountedFinds&) = delete;
  CountedFinds& operator=(const CountedFinds&) = delete;
  [[nodiscard]] std::function<void(const std::string&)> log() {
    return [this](const std::string& line) {
      const std::lock_guard lock(lines_mutex);
      lines.push_back(line);
    };
  }
  [[nodiscard]] std::vector<std::string> lines_seen() {
    const std::lock_guard lock(lines_mutex);
    return lines;
  }

  std::shared_ptr<net::QueryService> service = std::make_shared<net::QueryService>();
  std::atomic<int> handled{0};
  std::mutex lines_mutex;
  std::vector<std::string> lines;
};

// Waits until the listener, which opens its port in run() on another thread, answers a C-ECHO.
::testing::AssertionResult listening(const net::Peer& peer) {
  auto ready = net::echo(peer, "QUERIER", 5);
  for (int i = 0; i < 100 && !ready; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ready = net::echo(peer, "QUERIER", 5);
  }
  if (ready) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << ready.error().message;
}

// A C-FIND whose identifier is 64 MiB is refused once kMaxIdentifierBytes of it have arrived:
// answered 0xA900, the association aborted, most of the identifier never read (the peer
// cannot send it) and the handler never asked; the next association is served as usual.
TEST(GatewayQueryNet, AnIdentifierBeyondTheBoundIsRefusedBeforeItIsReceivedWhole) {
  CountedFinds finds;
  std::atomic<int>& handled = finds.handled;
  const ServedQueries served(finds.service, 4, finds.log());
  ASSERT_TRUE(served.server()) << served.server().error().message;
  ASSERT_TRUE(listening(served.peer()));

  constexpr std::size_t kHostile = 64u << 20;
  const HostileQuery hostile = send_hostile_find(served.peer().port, kHostile);
  ASSERT_TRUE(hostile.associated);
  ASSERT_TRUE(hostile.status.has_value());
  EXPECT_EQ(*hostile.status, net::kStatusIdentifierMismatch);
  // The gateway stopped reading: what the socket took is the bound plus the kernel's buffers.
  EXPECT_LT(hostile.identifier_sent, kHostile / 2);
  EXPECT_EQ(handled.load(), 0);
  {
    const std::vector<std::string> lines = finds.lines_seen();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("identifier is over 65536 bytes; association aborted"),
              std::string::npos)
        << lines[0];
    EXPECT_NE(lines[0].find("QUERIER"), std::string::npos) << lines[0];
  }

  // An identifier within the bound (and within a key's 1 KiB), sent the same way, is read,
  // parsed and answered: the handler is asked ...
  const HostileQuery small = send_hostile_find(served.peer().port, 1000);
  ASSERT_TRUE(small.associated);
  EXPECT_EQ(small.identifier_sent, 1000u);
  ASSERT_TRUE(small.status.has_value());
  EXPECT_EQ(*small.status, net::kStatusSuccess);
  EXPECT_EQ(handled.load(), 1);
  // ... and so is an ordinary query on the next association.
  const auto next = net::find_studies(served.peer(), "QUERIER", net::StudyKey::patient_id, "A", 20);
  EXPECT_TRUE(next) << next.error().message;
  EXPECT_EQ(handled.load(), 2);
}

// An identifier that trickles in (a fragment within each DIMSE timeout, but never done) is
// refused once two timeouts have passed: answered 0xA900, the association aborted, the
// handler never asked. Before, each fragment restarted the wait, so a pool thread was held
// for as long as the peer liked.
TEST(GatewayQueryNet, AnIdentifierThatTricklesInIsRefusedAfterTwoTimeouts) {
  CountedFinds finds;
  std::atomic<int>& handled = finds.handled;
  const ServedQueries served(finds.service, 4, finds.log(), 1);
  ASSERT_TRUE(served.server()) << served.server().error().message;
  ASSERT_TRUE(listening(served.peer()));

  // 40 fragments 300 ms apart: 12 s in all, each well within the 1 s timeout.
  constexpr std::size_t kBytes = 400;
  const HostileQuery slow =
      send_hostile_find(served.peer().port, kBytes, 10, std::chrono::milliseconds(300));
  ASSERT_TRUE(slow.associated);
  ASSERT_TRUE(slow.status.has_value());
  EXPECT_EQ(*slow.status, net::kStatusIdentifierMismatch);
  EXPECT_EQ(handled.load(), 0);
  const std::vector<std::string> lines = finds.lines_seen();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("did not arrive in time; association aborted"), std::string::npos)
      << lines[0];
}

// --- a C-STORE's whole-instance deadline and the contexts commands may use (issue 16)

// A C-STORE handler that receives each data set into a folder and keeps the listener's log.
struct Receiving {
  explicit Receiving(fs::path into) : folder(std::move(into)) {}
  Receiving(const Receiving&) = delete;
  Receiving& operator=(const Receiving&) = delete;
  [[nodiscard]] net::ServerConfig config(std::uint32_t floor_s, std::uint64_t min_rate) {
    net::ServerConfig config;
    config.max_associations = 2;
    config.dimse_timeout_s = 1;
    config.store_floor_s = floor_s;
    config.store_min_bytes_per_s = min_rate;
    config.log = [this](const std::string& line) {
      const std::lock_guard lock(mutex);
      lines.push_back(line);
    };
    return config;
  }
  // Also answers queries (so that Q/R contexts are accepted), and counts in `refused` the
  // C-STOREs refused before the handler is asked.
  [[nodiscard]] net::ServerConfig config_with_queries(const CountedFinds& finds,
                                                      std::atomic<int>& refused) {
    net::ServerConfig config = this->config(120, 64 * 1024);
    config.query = finds.service;
    config.store_refused = [&refused] { ++refused; };
    return config;
  }
  [[nodiscard]] net::StoreHandler handler() {
    return [this](const net::StoreRequest&, const net::ReceiveInto& receive) {
      ++asked;
      const Status got = receive(folder / ("instance-" + std::to_string(asked.load()) + ".dcm"));
      if (got) ++received;
      return got ? net::kStatusSuccess : net::kStatusProcessingFailure;
    };
  }
  [[nodiscard]] std::vector<std::string> lines_seen() {
    const std::lock_guard lock(mutex);
    return lines;
  }
  [[nodiscard]] std::size_t files() const {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(folder)) ++n;
    return n;
  }

  fs::path folder;
  std::atomic<int> asked{0}, received{0};
  std::mutex mutex;
  std::vector<std::string> lines;
};

// A CT data set of `bytes` (even, at least 16), implicit VR little endian, given `fragment`
// bytes at a time: a Study Description (0008,1030) whose value fills the rest.
NextFragment trickled_data_set(std::size_t bytes, std::size_t fragment, std::size_t& left) {
  left = bytes;
  return [bytes, fragment, &left] {
    std::string piece;
    if (left == bytes) piece = element(0x0008, 0x1030, "").substr(0, 4) + le32(
        static_cast<std::uint32_t>(bytes - 8));
    piece.append(std::min(fragment, left) - piece.size(), 'A');
    left -= piece.size();
    return std::pair{piece, left == 0};
  };
}

// A data set that trickles in (a fragment well within each 1 s DIMSE timeout, but far below
// the minimum rate) is cut off once its allowance (floor 2 s plus 1 s per 1000 bytes) has
// passed: the association aborted, nothing answered, no file left where it was received.
// Before, each fragment restarted the wait and the instance was acknowledged 12 s later.
TEST(GatewayStoreNet, AnInstanceThatTricklesInIsAbortedWithNothingKept) {
  TempDir dir;
  Receiving receiving(dir.path());
  const ServedQueries served(receiving.config(2, 1000), receiving.handler());
  ASSERT_TRUE(served.server()) << served.server().error().message;
  ASSERT_TRUE(listening(served.peer()));

  std::size_t left = 0;  // 40 fragments of 10 bytes, 300 ms apart: 33 bytes/s
  const RawExchange slow = exchange(served.peer().port, kCtImageStorage,
                                    store_rq_command(kCtImageStorage),
                                    trickled_data_set(400, 10, left), std::chrono::milliseconds(300));
  ASSERT_TRUE(slow.associated);
  EXPECT_FALSE(slow.status.has_value());  // nothing acknowledged
  EXPECT_TRUE(slow.aborted);
  EXPECT_GT(left, 0u);  // cut off before the last fragment
  EXPECT_EQ(receiving.asked.load(), 1);
  EXPECT_EQ(receiving.received.load(), 0);
  EXPECT_EQ(receiving.files(), 0u);  // nothing half-written kept
  const std::vector<std::string> lines = receiving.lines_seen();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("did not arrive in time"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("QUERIER"), std::string::npos) << lines[0];
}

// A larger instance on a slow link, past the floor but above the minimum rate (5000 bytes/s
// against 1000), arrives whole and is acknowledged: the allowance grows with what arrives.
TEST(GatewayStoreNet, ALargeInstanceOnASlowLinkAboveTheMinimumRateIsAcknowledged) {
  TempDir dir;
  Receiving receiving(dir.path());
  const ServedQueries served(receiving.config(2, 1000), receiving.handler());
  ASSERT_TRUE(served.server()) << served.server().error().message;
  ASSERT_TRUE(listening(served.peer()));

  std::size_t left = 0;  // 20 fragments of 1000 bytes, 200 ms apart: about 4 s in all
  const RawExchange slow = exchange(served.peer().port, kCtImageStorage,
                                    store_rq_command(kCtImageStorage),
                                    trickled_data_set(20000, 1000, left),
                                    std::chrono::milliseconds(200));
  ASSERT_TRUE(slow.associated);
  ASSERT_TRUE(slow.status.has_value());
  EXPECT_EQ(*slow.status, net::kStatusSuccess);
  EXPECT_FALSE(slow.aborted);
  EXPECT_EQ(receiving.received.load(), 1);
  EXPECT_EQ(receiving.files(), 1u);
}

// The deadline grows with the bytes received, so a data set has a size limit too: past it
// the association is aborted at once, nothing acknowledged or kept (review: a peer streaming
// an endless data set above the minimum rate held its slot and filled the spool).
TEST(GatewayStoreNet, AnInstanceLargerThanTheLimitIsAbortedWithNothingKept) {
  TempDir dir;
  Receiving receiving(dir.path());
  net::ServerConfig config = receiving.config(60, 1000);
  config.store_max_bytes = 5000;
  const ServedQueries served(std::move(config), receiving.handler());
  ASSERT_TRUE(served.server()) << served.server().error().message;
  ASSERT_TRUE(listening(served.peer()));

  std::size_t left = 0;  // 20 fragments of 1000 bytes, at once: fast, but too many
  const RawExchange big = exchange(served.peer().port, kCtImageStorage,
                                   store_rq_command(kCtImageStorage),
                                   trickled_data_set(20000, 1000, left),
                                   std::chrono::milliseconds(0));
  ASSERT_TRUE(big.associated);
  EXPECT_FALSE(big.status.has_value());
  EXPECT_TRUE(big.aborted);
  EXPECT_EQ(receiving.received.load(), 0);
  EXPECT_EQ(receiving.files(), 0u);
  const std::vector<std::string> lines = receiving.lines_seen();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("larger than this node accepts"), std::string::npos) << lines[0];
}

// PS3.7 9.1: a C-FIND on a context negotiated for a storage SOP class is answered 0x0122
// (SOP Class Not Supported) and its handler never asked; before, it was served. So is a
// C-FIND whose context is a FIND model but whose Affected SOP Class is another.
TEST(GatewayQueryNet, AQueryOnAStorageContextIsRefusedSopClassNotSupported) {
  CountedFinds finds;
  const ServedQueries served(finds.service, 4, finds.log());
  ASSERT_TRUE(served.server()) << served.server().error().message;
  ASSERT_TRUE(listening(served.peer()));

  const HostileQuery on_storage = send_hostile_find(served.peer().port, 100, 16000,
                                                    std::chrono::milliseconds(0), kCtImageStorage);
  ASSERT_TRUE(on_storage.associated);
  ASSERT_TRUE(on_storage.status.has_value());
  EXPECT_EQ(*on_storage.status, net::kStatusSopClassNotSupported);
  EXPECT_EQ(finds.handled.load(), 0);
  const std::vector<std::string> lines = finds.lines_seen();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("presentation context of another SOP class"), std::string::npos)
      << lines[0];
  // On its own model's context the same query is served.
  const HostileQuery own = send_hostile_find(served.peer().port, 100);
  ASSERT_TRUE(own.status.has_value());
  EXPECT_EQ(*own.status, net::kStatusSuccess);
  EXPECT_EQ(finds.handled.load(), 1);
}

// And the reverse: a C-STORE on a Query/Retrieve context, or on a context of another storage
// SOP class than its own, is read, dropped and answered 0x0122; the handler never sees it,
// nothing is kept, and the association goes on.
TEST(GatewayStoreNet, AStoreOnAnotherSopClassesContextIsRefusedSopClassNotSupported) {
  TempDir dir;
  Receiving receiving(dir.path());
  CountedFinds finds;
  std::atomic<int> refusals{0};
  const ServedQueries served(receiving.config_with_queries(finds, refusals), receiving.handler());
  ASSERT_TRUE(served.server()) << served.server().error().message;
  ASSERT_TRUE(listening(served.peer()));

  for (const char* context : {kStudyRootFind, kMrImageStorage}) {
    std::size_t left = 0;
    const RawExchange refused = exchange(served.peer().port, context,
                                         store_rq_command(kCtImageStorage),
                                         trickled_data_set(400, 400, left));
    ASSERT_TRUE(refused.associated) << context;
    ASSERT_TRUE(refused.status.has_value()) << context;
    EXPECT_EQ(*refused.status, net::kStatusSopClassNotSupported) << context;
    EXPECT_FALSE(refused.aborted) << context;
  }
  EXPECT_EQ(receiving.asked.load(), 0);
  EXPECT_EQ(refusals.load(), 2);  // in the caller's totals (the gateway's "refused")
  EXPECT_EQ(receiving.files(), 0u);
  // On a context of its own SOP class the same request is received and acknowledged.
  std::size_t left = 0;
  const RawExchange own = exchange(served.peer().port, kCtImageStorage,
                                   store_rq_command(kCtImageStorage),
                                   trickled_data_set(400, 400, left));
  ASSERT_TRUE(own.status.has_value());
  EXPECT_EQ(*own.status, net::kStatusSuccess);
  EXPECT_EQ(receiving.files(), 1u);
}

TEST_F(GatewayQueryFolder, RoutesThatWouldQueryTheSpoolOrMovePastTheLedgerAreRefused) {
  testing::write_key_file(dir_ / "k.key");
  pipeline::Spec spec;
  spec.key_file = dir_ / "k.key";
  auto pipeline = pipeline::Pipeline::create(spec);
  ASSERT_TRUE(pipeline);
  gateway::GatewayConfig c;
  c.port = 11112;
  c.ae_title = "RG";
  c.spool = dir_ / "spool";
  c.output = dir_ / "out";
  c.query_retrieve = gateway::QueryRetrieve::over_output;
  c.allowed_calling = {"QUERIER"};
  c.move_destinations.push_back({"DEST", "127.0.0.1", 104, std::nullopt, {}});
  EXPECT_TRUE(gateway::check_route(c, *pipeline));
  // Q/R answers only peers an allow-list names: an empty one (anyone) is refused.
  auto anyone = c;
  anyone.allowed_calling.clear();
  const auto unlisted = gateway::check_route(anyone, *pipeline);
  ASSERT_FALSE(unlisted);
  EXPECT_NE(unlisted.error().message.find("--allow-calling"), std::string::npos);
  auto by_host = anyone;
  auto rule = net::parse_host_rule("127.0.0.1");
  ASSERT_TRUE(rule);
  by_host.allowed_hosts.push_back(*rule);
  EXPECT_TRUE(gateway::check_route(by_host, *pipeline));
  // The output folder inside the spool (or the spool inside it): the spool's originals would
  // be answered.
  auto inside = c;
  inside.output = dir_ / "spool" / "out";
  const auto spooled = gateway::check_route(inside, *pipeline);
  ASSERT_FALSE(spooled);
  EXPECT_NE(spooled.error().message.find("spool"), std::string::npos);
  auto around = c;
  around.spool = dir_ / "out" / "spool";
  EXPECT_FALSE(gateway::check_route(around, *pipeline));
  auto forward = c;
  forward.output.clear();
  forward.forward = net::Peer{"FWD", "127.0.0.1", 105, std::nullopt, {}};
  EXPECT_FALSE(gateway::check_route(forward, *pipeline));  // nothing released is held
  auto off = c;
  off.query_retrieve = gateway::QueryRetrieve::off;
  EXPECT_FALSE(gateway::check_route(off, *pipeline));  // destinations without the service
  auto twice = c;
  twice.move_destinations.push_back({"DEST", "127.0.0.2", 104, std::nullopt, {}});
  EXPECT_FALSE(gateway::check_route(twice, *pipeline));
  // A release route, with or without move destinations: released for one recipient only.
  auto released = c;
  released.release = gateway::ReleaseRoute{"research", "lab", "reg.db", "ledger.db", ""};
  const auto past_ledger = gateway::check_route(released, *pipeline);
  ASSERT_FALSE(past_ledger);
  EXPECT_NE(past_ledger.error().message.find("ledger"), std::string::npos);
  released.move_destinations.clear();
  const auto queried = gateway::check_route(released, *pipeline);
  ASSERT_FALSE(queried);
  EXPECT_NE(queried.error().message.find("--query-retrieve"), std::string::npos);
}

}  // namespace
}  // namespace radguard
