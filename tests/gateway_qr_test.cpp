// radguard gateway as a Query/Retrieve SCP: matching (PS3.4 C.2.2.2) and the answers over a
// released folder, on this project's own fixtures (support/fixtures.hpp: make_ct); the network
// side against DCMTK's findscu/movescu is tests/gateway_qr_test.sh.
#include <gtest/gtest.h>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include <string_view>
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
                        kModalitiesInStudy = 0x00080061;

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
      {dir_ / "out", "RG", {{"DEST", "127.0.0.1", 104, std::nullopt, {}}}, std::nullopt}, {});
  auto refused = service->move(request(net::QueryLevel::study, {{kPatientID, "PID1"}}), "OTHER");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::not_found);  // answered 0xA801
  auto planned = service->move(request(net::QueryLevel::study, {{kPatientID, "PID1"}}), "DEST");
  ASSERT_TRUE(planned);
  EXPECT_EQ(planned->files.size(), 2u);
  EXPECT_EQ(planned->destination.port, 104);
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
  c.move_destinations.push_back({"DEST", "127.0.0.1", 104, std::nullopt, {}});
  EXPECT_TRUE(gateway::check_route(c, *pipeline));
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
  auto released = c;
  released.release = gateway::ReleaseRoute{"research", "lab", "reg.db", "ledger.db", ""};
  const auto past_ledger = gateway::check_route(released, *pipeline);
  ASSERT_FALSE(past_ledger);
  EXPECT_NE(past_ledger.error().message.find("ledger"), std::string::npos);
}

}  // namespace
}  // namespace radguard
