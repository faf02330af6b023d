#include "net/dimse.hpp"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcostrmf.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmnet/assoc.h>
#include <dcmtk/dcmnet/dimse.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/scppool.h>
#include <dcmtk/dcmnet/scpthrd.h>
#include <dcmtk/dcmnet/dcmtrans.h>
#include <dcmtk/dcmnet/dul.h>
#include <dcmtk/dcmnet/scu.h>
#include <dcmtk/dcmtls/tlslayer.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "dicom/dicom_file.hpp"
#include "net/query_service.hpp"

namespace radguard::net {

namespace fs = std::filesystem;

namespace {

// The transfer syntaxes accepted as they come: uncompressed first (preferred), then deflated,
// JPEG, JPEG-LS, JPEG 2000, RLE and video.
constexpr const char* kTransferSyntaxes[] = {
    UID_LittleEndianExplicitTransferSyntax,
    UID_LittleEndianImplicitTransferSyntax,
    UID_BigEndianExplicitTransferSyntax,
    UID_DeflatedExplicitVRLittleEndianTransferSyntax,
    UID_JPEGProcess1TransferSyntax,
    UID_JPEGProcess2_4TransferSyntax,
    UID_JPEGProcess14TransferSyntax,
    UID_JPEGProcess14SV1TransferSyntax,
    UID_JPEGLSLosslessTransferSyntax,
    UID_JPEGLSLossyTransferSyntax,
    UID_JPEG2000LosslessOnlyTransferSyntax,
    UID_JPEG2000TransferSyntax,
    UID_RLELosslessTransferSyntax,
    UID_MPEG2MainProfileAtMainLevelTransferSyntax,
    UID_MPEG2MainProfileAtHighLevelTransferSyntax,
    UID_MPEG4HighProfileLevel4_1TransferSyntax,
    UID_MPEG4BDcompatibleHighProfileLevel4_1TransferSyntax,
    UID_HEVCMainProfileLevel5_1TransferSyntax,
    UID_HEVCMain10ProfileLevel5_1TransferSyntax,
};

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\0')) text.pop_back();
  while (!text.empty() && text.front() == ' ') text.erase(text.begin());
  return text;
}

// An AE title as a log line may show it: the peer chose the bytes, so anything but printable
// ASCII becomes '?'.
std::string printable(std::string text) {
  for (char& c : text)
    if (c < 0x20 || c > 0x7e) c = '?';
  return text;
}

// The address of the peer at the other end of an association's connection, as text ("" when
// it cannot be read). Read from the socket itself: DCMTK's calling presentation address is a
// looked-up name, or empty, depending on global settings.
// DcmTransportConnection::getSocket is protected in DCMTK 3.6.7: reached through a pointer to
// the member taken in a derived class (no object of it is made).
struct SocketOf : DcmTransportConnection {
  static DcmNativeSocketType of(DcmTransportConnection& connection) {
    return (connection.*(&SocketOf::getSocket))();
  }
};

std::string peer_address(T_ASC_Association* assoc) {
  if (assoc == nullptr || assoc->DULassociation == nullptr) return {};
  DcmTransportConnection* connection = DUL_getTransportConnection(assoc->DULassociation);
  if (connection == nullptr) return {};
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getpeername(SocketOf::of(*connection), reinterpret_cast<sockaddr*>(&address), &length) != 0)
    return {};
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    if (::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text) == nullptr) return {};
  } else if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    if (::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text) == nullptr) return {};
  } else {
    return {};
  }
  return text;
}

// 16 bytes of an IPv4 (mapped: ::ffff:a.b.c.d) or IPv6 address; false if it is neither.
bool address_bytes(const std::string& text, std::uint8_t out[16], bool& v4) {
  in_addr a4{};
  in6_addr a6{};
  if (::inet_pton(AF_INET, text.c_str(), &a4) == 1) {
    std::memset(out, 0, 16);
    out[10] = out[11] = 0xff;
    std::memcpy(out + 12, &a4, 4);
    v4 = true;
    return true;
  }
  if (::inet_pton(AF_INET6, text.c_str(), &a6) == 1) {
    std::memcpy(out, &a6, 16);
    v4 = false;
    return true;
  }
  return false;
}

// A TLS transport layer for one role, configured from PEM files: the non-downgrading BCP 195
// profile, the node's certificate and key, the trusted certificates, and a peer certificate
// required and verified.
Result<std::unique_ptr<DcmTLSTransportLayer>> make_tls_layer(const TlsFiles& files,
                                                             T_ASC_NetworkRole role) {
  auto layer = std::make_unique<DcmTLSTransportLayer>(role, nullptr, OFFalse);
  if (!*layer) return fail(ErrorCode::internal, "cannot set up TLS (OpenSSL)");
  const auto bad = [](const std::string& what) { return fail(ErrorCode::usage, what); };
  if (layer->setTLSProfile(TSP_Profile_BCP195_ND).bad() || layer->activateCipherSuites().bad())
    return bad("cannot set the BCP 195 TLS profile");
  if (!fs::is_regular_file(files.certificate))
    return bad("TLS certificate " + files.certificate.string() + " is not a file");
  if (!fs::is_regular_file(files.private_key))
    return bad("TLS private key " + files.private_key.string() + " is not a file");
  if (!fs::is_regular_file(files.trusted))
    return bad("TLS trusted certificate " + files.trusted.string() + " is not a file");
  if (layer->setPrivateKeyFile(files.private_key.c_str(), DCF_Filetype_PEM).bad())
    return bad("cannot read the TLS private key " + files.private_key.string() +
               " (PEM, not encrypted)");
  if (layer->setCertificateFile(files.certificate.c_str(), DCF_Filetype_PEM).bad())
    return bad("cannot read the TLS certificate " + files.certificate.string() + " (PEM)");
  if (!layer->checkPrivateKeyMatchesCertificate())
    return bad("the TLS private key " + files.private_key.string() +
               " does not match the certificate " + files.certificate.string());
  if (layer->addTrustedCertificateFile(files.trusted.c_str(), DCF_Filetype_PEM).bad())
    return bad("cannot read the TLS trusted certificate " + files.trusted.string() + " (PEM)");
  if (role == NET_ACCEPTOR) (void)layer->setBuiltInDHParameters();
  layer->setCertificateVerification(DCV_requireCertificate);
  return layer;
}

// Makes a requestor's layer refuse a peer whose certificate was not issued for `name` (the
// chain alone proves only that the trusted CA issued it, maybe to another node): an IP
// address must be among its IP subject alternative names, a DNS name among its DNS ones
// (or its common name when it has none), without partial wildcards ("a*.example.org").
Status expect_peer_name(DcmTLSTransportLayer& layer, const std::string& name) {
  if (name.empty() || name.find('\0') != std::string::npos)
    return fail(ErrorCode::usage, "a TLS peer needs a name to check its certificate against");
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(layer.getNativeHandle());
  if (param == nullptr) return fail(ErrorCode::internal, "cannot set up TLS (OpenSSL)");
  std::uint8_t bytes[16];
  bool v4 = false;
  if (address_bytes(name, bytes, v4)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1)
      return fail(ErrorCode::usage, "cannot check a TLS certificate against " + printable(name));
    return {};
  }
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) != 1)
    return fail(ErrorCode::usage, "cannot check a TLS certificate against " + printable(name));
  return {};
}

struct Shared {
  StoreHandler handler;
  std::vector<std::string> allowed_calling;
  std::vector<HostRule> allowed_hosts;
  std::string ae_title;
  std::function<void(const std::string&)> log;
  std::shared_ptr<const QueryService> query;  // null: C-FIND and C-MOVE refused
  std::chrono::seconds store_floor{120};      // ServerConfig::store_floor_s
  std::uint64_t store_min_bytes_per_s = 0;     // ServerConfig::store_min_bytes_per_s
  std::uint64_t store_max_bytes = 8ULL << 30;  // ServerConfig::store_max_bytes
  std::function<void()> store_refused;        // ServerConfig::store_refused
  void note(const std::string& line) const {
    if (log) log(line);
  }
  void refused_store() const {
    if (store_refused) store_refused();
  }
};

// Ends an association whose C-STORE data set did not arrive within its deadline: DcmSCP
// aborts on a bad condition from the command handler.
const OFConditionConst kDataSetTooSlow = {OFM_dcmnet, DIMSEC_RECEIVEFAILED, OF_error,
                                          "the data set did not arrive in time or was too large"};

// One association's SCP, run by a pool thread.
class GatewaySCP : public DcmThreadSCP {
 public:
  explicit GatewaySCP(const Shared& shared) : shared_(shared) {}

 protected:
  // A peer whose address is not on the allow-list is refused before anything else is looked
  // at (the address is read from the socket, never looked up).
  void notifyAssociationRequest(const T_ASC_Parameters& params,
                                DcmSCPActionType& action) override {
    (void)params;
    if (shared_.allowed_hosts.empty()) return;
    const std::string address = peer_address(assoc_);
    if (!address.empty() &&
        std::ranges::any_of(shared_.allowed_hosts,
                            [&](const HostRule& rule) { return host_matches(rule, address); }))
      return;
    shared_.note("refused an association from " + (address.empty() ? "an unknown address" : address) +
                 ": the address is not allowed");
    action = DCMSCP_ACTION_REFUSE_ASSOCIATION;
  }

  OFBool checkCalledAETitleAccepted(const OFString& called) override {
    if (trimmed(called.c_str()) == shared_.ae_title) return OFTrue;
    shared_.note("refused an association from " + peer_address(assoc_) +
                 ": called AE title is not " + shared_.ae_title);
    return OFFalse;
  }
  OFBool checkCallingAETitleAccepted(const OFString& calling) override {
    if (shared_.allowed_calling.empty()) return OFTrue;
    const std::string name = trimmed(calling.c_str());
    if (std::ranges::find(shared_.allowed_calling, name) != shared_.allowed_calling.end())
      return OFTrue;
    shared_.note("refused an association from " + peer_address(assoc_) +
                 ": calling AE title " + printable(name) + " is not allowed");
    return OFFalse;
  }

  // Accepts each proposed context of Verification (uncompressed) or of a storage SOP class
  // (any transfer syntax of kTransferSyntaxes), with the first transfer syntax the peer
  // proposes that is supported: data is kept as it comes; other contexts are refused.
  OFCondition negotiateAssociation() override {
    if (assoc_ == nullptr || assoc_->params == nullptr) return DIMSE_ILLEGALASSOCIATION;
    T_ASC_Parameters* params = assoc_->params;
    const int count = ASC_countPresentationContexts(params);
    for (int i = 0; i < count; ++i) {
      T_ASC_PresentationContext pc;
      OFCondition cond = ASC_getPresentationContext(params, i, &pc);
      if (cond.bad()) return cond;
      // Verification and Query/Retrieve take uncompressed syntaxes only.
      const bool verification = std::string_view(pc.abstractSyntax) == UID_VerificationSOPClass ||
                                offers_query(pc.abstractSyntax);
      if (!verification && !dcmIsaStorageSOPClassUID(pc.abstractSyntax, ESSC_All)) {
        cond = ASC_refusePresentationContext(params, pc.presentationContextID,
                                             ASC_P_ABSTRACTSYNTAXNOTSUPPORTED);
        if (cond.bad()) return cond;
        continue;
      }
      const auto supported = [&](std::string_view syntax) {
        const std::size_t n = verification ? 3 : std::size(kTransferSyntaxes);
        for (std::size_t k = 0; k < n; ++k)
          if (syntax == kTransferSyntaxes[k]) return true;
        return false;
      };
      bool accepted = false;
      for (int j = 0; j < pc.transferSyntaxCount; ++j) {
        if (!supported(pc.proposedTransferSyntaxes[j])) continue;
        cond = ASC_acceptPresentationContext(params, pc.presentationContextID,
                                             pc.proposedTransferSyntaxes[j]);
        if (cond.bad()) return cond;
        accepted = true;
        break;
      }
      if (!accepted) {
        cond = ASC_refusePresentationContext(params, pc.presentationContextID,
                                             ASC_P_TRANSFERSYNTAXESNOTSUPPORTED);
        if (cond.bad()) return cond;
      }
    }
    return EC_Normal;
  }

  // Whether a C-STORE for `affected` may be served on the channel's context: one negotiated
  // for that same storage SOP class.
  static bool storage_context(const detail::Channel& channel, const char* affected) {
    return detail::context_is_for(channel, affected) &&
           dcmIsaStorageSOPClassUID(channel.abstract_syntax.c_str(), ESSC_All);
  }

  bool offers_query(const char* sop_class) const {
    return shared_.query != nullptr &&
           std::ranges::find(query_sop_classes(), std::string_view(sop_class)) !=
               query_sop_classes().end();
  }

 public:
  // The association DcmThreadSCP::run is about to serve (DcmSCP keeps its own pointer private).
  void set_association(T_ASC_Association* assoc) { assoc_ = assoc; }

 protected:
  OFCondition handleIncomingCommand(T_DIMSE_Message* message,
                                    const DcmPresentationContextInfo& info) override {
    if (shared_.query && (message->CommandField == DIMSE_C_FIND_RQ ||
                          message->CommandField == DIMSE_C_MOVE_RQ)) {
      const detail::Channel channel = channel_for(info);
      return message->CommandField == DIMSE_C_FIND_RQ
                 ? detail::serve_find(channel, message->msg.CFindRQ, *shared_.query)
                 : detail::serve_move(channel, message->msg.CMoveRQ, *shared_.query);
    }
    if (message->CommandField != DIMSE_C_STORE_RQ)
      return DcmThreadSCP::handleIncomingCommand(message, info);
    T_DIMSE_C_StoreRQ& request = message->msg.CStoreRQ;
    const T_ASC_PresentationContextID pres = info.presentationContextID;
    const detail::Channel channel = channel_for(info);
    // A request that announces no data set has none to read: it is answered, the association
    // goes on.
    if (request.DataSetType == DIMSE_DATASET_NULL) {
      shared_.refused_store();
      return sendSTOREResponse(pres, request, kStatusCannotUnderstand);
    }
    // PS3.7 9.1: a C-STORE goes on a context negotiated for its own storage SOP class. One on
    // a Query/Retrieve or Verification context (or another class's) is read, dropped and
    // answered 0x0122; the handler never sees it.
    if (!storage_context(channel, request.AffectedSOPClassUID)) {
      shared_.note("refused a C-STORE from " + channel.calling_ae +
                   ": it came on a presentation context of another SOP class");
      shared_.refused_store();
      const Arrival dropped = receive_data_set(request, channel, nullptr);
      if (dropped.outcome == Outcome::broken) return dropped.condition;
      return sendSTOREResponse(pres, request, kStatusSopClassNotSupported);
    }
    StoreRequest seen{printable(trimmed(getPeerAETitle().c_str())),
                      trimmed(request.AffectedSOPClassUID)};
    bool received = false;
    Arrival arrival{};
    const ReceiveInto receive = [&](const fs::path& path) -> Status {
      if (received) return fail(ErrorCode::internal, "a data set can be received only once");
      received = true;
      arrival = receive_data_set(request, channel, &path);
      if (arrival.outcome == Outcome::whole) return {};
      std::error_code ec;
      fs::remove(path, ec);
      if (arrival.outcome == Outcome::not_written)
        return fail(ErrorCode::io, "writing the data set failed: " + arrival.problem);
      return fail(ErrorCode::malformed_dicom, "receiving the data set failed: " + arrival.problem);
    };
    std::uint16_t status = kStatusProcessingFailure;
    try {
      status = shared_.handler(seen, receive);
    } catch (const std::exception&) {
      status = kStatusProcessingFailure;
    }
    if (!received) arrival = receive_data_set(request, channel, nullptr);
    // Only a broken association ends it: a data set that arrived whole as P-DATA, however
    // malformed its contents, is answered and the next request is served.
    if (arrival.outcome == Outcome::broken) return arrival.condition;
    if (arrival.outcome == Outcome::not_understood && store_succeeded(status))
      status = kStatusCannotUnderstand;
    return sendSTOREResponse(pres, request, status);
  }

 private:
  enum class Outcome {
    whole,           // every fragment, up to the last, written
    not_written,     // every fragment read, but the file could not be written
    not_understood,  // every fragment read, but on another presentation context
    broken,          // the association broke (or a command came instead): it cannot go on
  };
  struct Arrival {
    Outcome outcome = Outcome::broken;
    std::string problem;     // neutral: no byte of the data set
    OFCondition condition;   // with Outcome::broken: what ends the association
  };

  // How the Q/R services and the C-STORE receiver read this association.
  detail::Channel channel_for(const DcmPresentationContextInfo& info) {
    return {assoc_,
            info.presentationContextID,
            getDIMSEBlockingMode(),
            static_cast<int>(getDIMSETimeout()),
            trimmed(info.abstractSyntax.c_str()),
            printable(trimmed(getPeerAETitle().c_str())),
            [this](const std::string& line) { shared_.note(line); }};
  }

  // Reads the data set of a C-STORE request: its P-DATA fragments, as bytes, up to the one
  // marked last, written after a meta header into a new file at `*path` (nullptr: dropped).
  // Nothing here parses the bytes: a data set cut inside an element, of odd length or with a
  // length running past its end arrives as it came and is judged by whoever reads the file,
  // while the association stays in step (the next PDU is the next request's command).
  //
  // The whole must arrive within the store deadline (detail::ArrivalDeadline, the bound the
  // Q/R identifier has): past it the association is aborted (Outcome::broken, too slow), the
  // file removed by the caller and nothing answered.
  Arrival receive_data_set(T_DIMSE_C_StoreRQ& request, const detail::Channel& channel,
                           const fs::path* path) {
    const T_ASC_PresentationContextID pres = channel.pres;
    const detail::ArrivalDeadline deadline(shared_.store_floor, shared_.store_min_bytes_per_s);
    std::uint64_t received = 0;
    Arrival arrival;
    DcmOutputFileStream* raw_stream = nullptr;
    if (path != nullptr) {
      const OFCondition made = DIMSE_createFilestream(OFFilename(path->c_str()), &request,
                                                      assoc_, pres, OFTrue, &raw_stream);
      if (made.bad()) {
        delete raw_stream;
        raw_stream = nullptr;
        arrival.problem = "cannot create the file";
      }
    }
    std::unique_ptr<DcmOutputFileStream> stream(raw_stream);
    bool written = stream != nullptr;
    bool same_context = true;
    // Past the deadline or the size limit: the association is aborted, nothing answered.
    const auto refused = [&](const std::string& problem) {
      shared_.note("aborted an association from " + channel.calling_ae + ": a C-STORE " +
                   problem);
      arrival.outcome = Outcome::broken;
      arrival.problem = "the " + problem;
      arrival.condition = kDataSetTooSlow;
      return arrival;
    };
    for (;;) {
      if (deadline.passed(received)) return refused("data set did not arrive in time");
      DUL_PDV pdv{};
      const OFCondition cond = detail::next_pdv(channel, pdv);
      if (cond.bad()) {
        arrival.outcome = Outcome::broken;
        arrival.problem = "the association broke";
        arrival.condition = cond;
        return arrival;
      }
      if (pdv.pdvType != DUL_DATASETPDV) {
        // A command where the data set should go on: the peer and this node are out of step.
        arrival.outcome = Outcome::broken;
        arrival.problem = "a command came inside a data set";
        arrival.condition = DIMSE_UNEXPECTEDPDVTYPE;
        return arrival;
      }
      if (pdv.presentationContextID != pres) same_context = false;
      received += pdv.fragmentLength;
      if (received > shared_.store_max_bytes)
        return refused("data set was larger than this node accepts");
      if (written && pdv.fragmentLength > 0) {
        const auto length = static_cast<offile_off_t>(pdv.fragmentLength);
        if (stream->write(pdv.data, length) != length || !stream->good()) {
          written = false;
          arrival.problem = "the file could not be written";
        }
      }
      if (pdv.lastPDV) break;
    }
    if (stream) {
      stream->flush();
      if (!stream->good() && written) {
        written = false;
        arrival.problem = "the file could not be written";
      }
      stream.reset();  // closes the file
    }
    if (!same_context) {
      arrival.outcome = Outcome::not_understood;
      arrival.problem = "the data set came on another presentation context than its command";
    } else if (path != nullptr && !written) {
      arrival.outcome = Outcome::not_written;
    } else {
      arrival.outcome = Outcome::whole;
    }
    return arrival;
  }

 private:
  const Shared& shared_;
  T_ASC_Association* assoc_ = nullptr;
};

class Pool : public DcmBaseSCPPool {
 public:
  explicit Pool(const Shared& shared) : shared_(shared) {}

 protected:
  struct Worker : public DcmBaseSCPPool::DcmBaseSCPWorker, private GatewaySCP {
    Worker(Pool& pool, const Shared& shared)
        : DcmBaseSCPPool::DcmBaseSCPWorker(pool), GatewaySCP(shared) {}
    OFCondition setSharedConfig(const DcmSharedSCPConfig& config) override {
      return GatewaySCP::setSharedConfig(config);
    }
    OFBool busy() override { return GatewaySCP::isConnected(); }
    OFCondition workerListen(T_ASC_Association* const assoc) override {
      GatewaySCP::set_association(assoc);
      const OFCondition result = GatewaySCP::run(assoc);
      GatewaySCP::set_association(nullptr);
      return result;
    }
  };
  DcmBaseSCPWorker* createSCPWorker() override { return new Worker(*this, shared_); }

 private:
  const Shared& shared_;
};

bool valid_ae_title(const std::string& title) {
  if (title.empty() || title.size() > 16) return false;
  return std::ranges::all_of(title, [](char c) { return c >= 0x20 && c < 0x7f && c != '\\'; }) &&
         trimmed(title) == title;
}

}  // namespace

bool store_succeeded(std::uint16_t status) {
  return status == 0x0000 || status == 0x0001 || status == 0xB000 || status == 0xB006 ||
         status == 0xB007;
}

void disable_nagle() {
  static std::once_flag once;
  std::call_once(once, [] {
    ::setenv("TCP_NODELAY", "1", 1);
    // A peer's address is never looked up by name (a slow resolver would hold the listener;
    // the allow-list compares addresses).
    dcmDisableGethostbyaddr.set(OFTrue);
    DcmTLSTransportLayer::initializeOpenSSL();
    // DCMTK's logging off (it can print attribute values), its dictionary completed.
    dicom::initialise();
  });
}

Status check_tls(const TlsFiles& files) {
  disable_nagle();
  auto layer = make_tls_layer(files, NET_REQUESTOR);
  if (!layer) return std::unexpected(layer.error());
  return {};
}

Result<HostRule> parse_host_rule(const std::string& text) {
  const auto slash = text.find('/');
  const std::string address = text.substr(0, slash);
  HostRule rule;
  bool v4 = false;
  if (!address_bytes(address, rule.address, v4))
    return fail(ErrorCode::usage, "an allowed host must be an IPv4 or IPv6 address or a network "
                                  "(address/prefix), not \"" + printable(text) + "\"");
  rule.prefix = 128;
  if (slash != std::string::npos) {
    const std::string bits = text.substr(slash + 1);
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), value);
    const unsigned most = v4 ? 32 : 128;
    if (bits.empty() || ec != std::errc{} || end != bits.data() + bits.size() || value > most)
      return fail(ErrorCode::usage, "the prefix of an allowed network must be 0 to " +
                                        std::to_string(most) + ": \"" + printable(text) + "\"");
    rule.prefix = v4 ? value + 96 : value;
  }
  return rule;
}

bool host_matches(const HostRule& rule, const std::string& address) {
  std::uint8_t bytes[16];
  bool v4 = false;
  if (!address_bytes(address, bytes, v4)) return false;
  unsigned left = rule.prefix;
  for (std::size_t i = 0; i < 16 && left > 0; ++i) {
    const unsigned take = std::min(left, 8u);
    const auto mask = static_cast<std::uint8_t>(0xff00u >> take);
    if ((bytes[i] & mask) != (rule.address[i] & mask)) return false;
    left -= take;
  }
  return true;
}

namespace {

// The DCMTK server behind StoreServer: the pool, its settings and the TLS layer it uses.
class PoolServer final : public StoreServer {
 public:
  ServerConfig config;
  Shared shared;
  std::unique_ptr<DcmTLSTransportLayer> tls;  // outlives the pool (which does not own it)
  std::unique_ptr<Pool> pool;

  Status run() override {
    const OFCondition cond = pool->listen();
    if (cond.bad())
      return fail(ErrorCode::io,
                  "cannot listen on port " + std::to_string(config.port) + ": " + cond.text());
    return {};
  }
  void stop() override { pool->stopAfterCurrentAssociations(); }
};

}  // namespace

Result<std::unique_ptr<StoreServer>> StoreServer::create(ServerConfig config,
                                                         StoreHandler handler) {
  if (!valid_ae_title(config.ae_title))
    return fail(ErrorCode::usage, "the AE title must be 1 to 16 characters, no backslash");
  for (const auto& calling : config.allowed_calling)
    if (!valid_ae_title(calling))
      return fail(ErrorCode::usage, "an allowed calling AE title must be 1 to 16 characters");
  if (config.port == 0) return fail(ErrorCode::usage, "the listening port must be 1 to 65535");
  if (config.max_associations == 0 || config.max_associations > 1000)
    return fail(ErrorCode::usage, "the association pool must hold 1 to 1000 associations");
  if (!handler) return fail(ErrorCode::internal, "no C-STORE handler");
  if (config.store_floor_s == 0)
    return fail(ErrorCode::usage, "a C-STORE's deadline needs a floor of at least one second");
  if (config.store_max_bytes == 0)
    return fail(ErrorCode::usage, "a C-STORE's size limit must be at least one byte");
  disable_nagle();
  auto server = std::make_unique<PoolServer>();
  if (config.tls) {
    auto layer = make_tls_layer(*config.tls, NET_ACCEPTOR);
    if (!layer) return std::unexpected(layer.error());
    server->tls = std::move(*layer);
  }
  server->shared = Shared{std::move(handler), config.allowed_calling, config.allowed_hosts,
                        config.ae_title, config.log, config.query,
                        std::chrono::seconds(config.store_floor_s), config.store_min_bytes_per_s,
                        config.store_max_bytes, config.store_refused};
  server->config = std::move(config);
  server->pool = std::make_unique<Pool>(server->shared);
  Pool& pool = *server->pool;
  pool.setMaxThreads(static_cast<Uint16>(server->config.max_associations));
  DcmSCPConfig& cfg = pool.getConfig();
  cfg.setAETitle(server->config.ae_title.c_str());
  cfg.setPort(server->config.port);
  cfg.setHostLookupEnabled(OFFalse);  // (DcmSCP's setting; the pool reads the global below)
  // With TLS, every association is TLS: the handshake comes before any PDU, and a plain
  // association request fails it.
  if (server->tls) cfg.setTransportLayer(server->tls.get());
  // Wake up each second to see whether stop() was called.
  cfg.setConnectionBlockingMode(DUL_NOBLOCK);
  cfg.setConnectionTimeout(1);
  cfg.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
  cfg.setDIMSETimeout(server->config.dimse_timeout_s);
  cfg.setACSETimeout(30);
  OFList<OFString> plain;
  plain.push_back(UID_LittleEndianExplicitTransferSyntax);
  plain.push_back(UID_LittleEndianImplicitTransferSyntax);
  plain.push_back(UID_BigEndianExplicitTransferSyntax);
  if (cfg.addPresentationContext(UID_VerificationSOPClass, plain).bad())
    return fail(ErrorCode::internal, "cannot offer the Verification SOP class");
  // Storage SOP classes are negotiated by GatewaySCP::negotiateAssociation (DCMTK's profiles
  // hold at most 128 presentation contexts; there are more storage SOP classes).
  return std::unique_ptr<StoreServer>(std::move(server));
}

Result<Peer> parse_peer(const std::string& text) {
  const auto at = text.find('@');
  const auto colon = text.rfind(':');
  if (at == std::string::npos || colon == std::string::npos || colon < at)
    return fail(ErrorCode::usage, "a DICOM node is written AET@HOST:PORT");
  Peer peer;
  peer.ae_title = text.substr(0, at);
  peer.host = text.substr(at + 1, colon - at - 1);
  const std::string port = text.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535)
    return fail(ErrorCode::usage, "the port of a DICOM node must be 1 to 65535");
  peer.port = static_cast<std::uint16_t>(value);
  if (!valid_ae_title(peer.ae_title))
    return fail(ErrorCode::usage, "the AE title of a DICOM node must be 1 to 16 characters");
  if (peer.host.empty()) return fail(ErrorCode::usage, "a DICOM node needs a host");
  return peer;
}

namespace {

std::string peer_name(const Peer& peer) {
  return peer.ae_title + "@" + peer.host + ":" + std::to_string(peer.port);
}

// DcmSCU with its TLS switch reachable (protected in DCMTK 3.6.7).
class Scu : public DcmSCU {
 public:
  using DcmSCU::useSecureConnection;
};

// With TLS, the transport layer for associations with the peer (its certificate must carry
// the peer's name); none without. Fails with ErrorCode::usage (TLS files).
Result<std::unique_ptr<DcmTLSTransportLayer>> requestor_layer(const Peer& peer) {
  if (!peer.tls) return std::unique_ptr<DcmTLSTransportLayer>();
  auto made = make_tls_layer(*peer.tls, NET_REQUESTOR);
  if (!made) return std::unexpected(made.error());
  if (auto named = expect_peer_name(**made, peer.tls_name.empty() ? peer.host : peer.tls_name);
      !named)
    return std::unexpected(named.error());
  return std::move(*made);
}

void configure_scu(Scu& scu, const Peer& peer, const std::string& calling_ae,
                   std::uint32_t timeout_s) {
  scu.setAETitle(calling_ae.c_str());
  scu.setPeerAETitle(peer.ae_title.c_str());
  scu.setPeerHostName(peer.host.c_str());
  scu.setPeerPort(peer.port);
  scu.setACSETimeout(timeout_s);
  scu.setConnectionTimeout(static_cast<Sint32>(timeout_s));
  scu.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
  scu.setDIMSETimeout(timeout_s);
  scu.setVerbosePCMode(OFFalse);
}

// Configures an SCU for the peer; with TLS, `layer` receives the transport layer the SCU
// will use (open_network; it must outlive the association). Fails with ErrorCode::usage
// (TLS files).
Status configure(Scu& scu, const Peer& peer, const std::string& calling_ae,
                 std::uint32_t timeout_s, std::unique_ptr<DcmTLSTransportLayer>& layer) {
  auto made = requestor_layer(peer);
  if (!made) return std::unexpected(made.error());
  layer = std::move(*made);
  configure_scu(scu, peer, calling_ae, timeout_s);
  return {};
}

// Initialises the SCU's network, with TLS when `layer` is set (DcmSCU takes a transport
// layer only once its network exists).
OFCondition open_network(Scu& scu, DcmTLSTransportLayer* layer) {
  OFCondition cond = scu.initNetwork();
  if (cond.good() && layer != nullptr) cond = scu.useSecureConnection(layer);
  return cond;
}

}  // namespace

Status echo(const Peer& peer, const std::string& calling_ae, std::uint32_t timeout_s) {
  disable_nagle();
  std::unique_ptr<DcmTLSTransportLayer> layer;  // declared before the SCU: outlives it
  Scu scu;
  if (auto configured = configure(scu, peer, calling_ae, timeout_s, layer); !configured)
    return configured;
  OFList<OFString> syntaxes;
  syntaxes.push_back(UID_LittleEndianImplicitTransferSyntax);
  scu.addPresentationContext(UID_VerificationSOPClass, syntaxes);
  OFCondition cond = open_network(scu, layer.get());
  if (cond.good()) cond = scu.negotiateAssociation();
  if (cond.good()) cond = scu.sendECHORequest(0);
  if (cond.bad()) {
    scu.abortAssociation();
    return fail(ErrorCode::io, "C-ECHO to " + peer_name(peer) + " failed: " + cond.text());
  }
  scu.releaseAssociation();
  return {};
}

namespace {

// A file's SOP class and transfer syntax, from its meta header; empty when it cannot be read.
using Kind = std::pair<std::string, std::string>;

Kind kind_of(const fs::path& file) {
  DcmFileFormat meta;
  if (meta.loadFile(file.c_str(), EXS_Unknown, EGL_noChange, 0, ERM_metaOnly).bad()) return {};
  OFString sop_class, syntax;
  meta.getMetaInfo()->findAndGetOFString(DCM_MediaStorageSOPClassUID, sop_class);
  meta.getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, syntax);
  if (sop_class.empty() || syntax.empty()) return {};
  return {sop_class.c_str(), syntax.c_str()};
}

// An association may carry at most 128 presentation contexts (odd IDs 1 to 255).
constexpr std::size_t kMaxContexts = 128;

class DcmtkStoreSession final : public StoreSession {
 public:
  DcmtkStoreSession(Peer peer, std::string calling_ae, std::uint32_t timeout_s,
                    std::unique_ptr<DcmTLSTransportLayer> layer)
      : peer_(std::move(peer)),
        calling_ae_(std::move(calling_ae)),
        timeout_s_(timeout_s),
        layer_(std::move(layer)) {}
  ~DcmtkStoreSession() override { release(); }

  Result<std::vector<std::uint16_t>> store(const std::vector<fs::path>& files,
                                           const StoreAnswer& on_answer) override {
    std::vector<std::uint16_t> statuses(files.size(), kStatusProcessingFailure);
    std::vector<Kind> kinds(files.size());
    std::set<Kind> wanted;
    for (std::size_t i = 0; i < files.size(); ++i) {
      kinds[i] = kind_of(files[i]);
      if (!kinds[i].first.empty()) wanted.insert(kinds[i]);
    }
    // A file that cannot be sent for its own sake (unreadable, or its context not accepted)
    // is heard at once with its 0x0110, as a refusal; only files the association never
    // reached go unheard.
    auto heard_locally = [&](std::size_t i) {
      if (on_answer) on_answer(i, statuses[i]);
    };
    if (wanted.empty()) {
      for (std::size_t i = 0; i < files.size(); ++i) heard_locally(i);
      return statuses;
    }
    // A context the open association was not offered: open one that offers it too.
    const bool covered =
        std::ranges::all_of(wanted, [&](const Kind& k) { return offered_.contains(k); });
    if (!covered) release();
    // A kept association may have been ended by the peer while idle: found at the first send,
    // then sent again from that file over a new one, once.
    bool reused = is_open();
    bool any_answer = false;
    OFCondition cond = EC_Normal;
    for (std::size_t i = 0; i < files.size(); ++i) {
      if (kinds[i].first.empty()) {
        heard_locally(i);
        continue;
      }
      if (!is_open()) {
        if (auto opened = open(wanted); !opened) {
          if (any_answer) break;
          return std::unexpected(opened.error());
        }
      }
      const T_ASC_PresentationContextID pres =
          scu_->findPresentationContextID(kinds[i].first.c_str(), kinds[i].second.c_str());
      if (pres == 0) {  // not accepted by the peer
        heard_locally(i);
        continue;
      }
      Uint16 status = kStatusProcessingFailure;
      cond = scu_->sendSTORERequest(pres, files[i].c_str(), nullptr, status);
      if (cond.bad()) {
        // A file that could not be read fails alone; a failure of the network or the peer
        // (dcmnet's conditions: aborted, released, closed, timed out) ends the association,
        // which DcmSCU still counts as connected.
        if (cond.module() != OFM_dcmnet && scu_->isConnected()) {
          heard_locally(i);
          continue;
        }
        close();
        if (reused && !any_answer) {
          reused = false;
          --i;  // the same file, over a new association
          continue;
        }
        break;
      }
      statuses[i] = status;
      any_answer = true;
      reused = false;
      if (on_answer) on_answer(i, status);
    }
    if (!any_answer && cond.bad())
      return fail(ErrorCode::io,
                  "the association with " + peer_name(peer_) + " broke: " + cond.text());
    return statuses;
  }

  void release() override {
    if (scu_ && scu_->isConnected() && scu_->releaseAssociation().bad()) scu_->abortAssociation();
    scu_.reset();
  }
  bool is_open() const override { return scu_ && scu_->isConnected(); }
  std::uint64_t associations_opened() const override { return opened_; }

 private:
  // Opens an association offering every kind seen so far (or, past the limit on contexts, the
  // batch's own).
  Status open(const std::set<Kind>& wanted) {
    close();
    offered_.insert(wanted.begin(), wanted.end());
    if (offered_.size() > kMaxContexts) offered_ = wanted;
    auto scu = std::make_unique<Scu>();
    configure_scu(*scu, peer_, calling_ae_, timeout_s_);  // TLS: the layer made in create()
    for (const auto& kind : offered_) {
      OFList<OFString> syntaxes;
      syntaxes.push_back(kind.second.c_str());
      scu->addPresentationContext(kind.first.c_str(), syntaxes);
    }
    OFCondition cond = open_network(*scu, layer_.get());
    if (cond.good()) cond = scu->negotiateAssociation();
    if (cond.bad()) {
      scu->abortAssociation();
      return fail(ErrorCode::io, "no association with " + peer_name(peer_) + ": " + cond.text());
    }
    ++opened_;
    scu_ = std::move(scu);
    return {};
  }
  // Drops an association that broke (nothing to release).
  void close() {
    if (scu_ && scu_->isConnected()) scu_->abortAssociation();
    scu_.reset();
  }

  Peer peer_;
  std::string calling_ae_;
  std::uint32_t timeout_s_;
  std::unique_ptr<DcmTLSTransportLayer> layer_;  // declared before the SCU: outlives it
  std::unique_ptr<Scu> scu_;
  std::set<Kind> offered_;
  std::uint64_t opened_ = 0;
};

}  // namespace

Result<std::unique_ptr<StoreSession>> StoreSession::create(Peer peer, std::string calling_ae,
                                                           std::uint32_t timeout_s) {
  disable_nagle();
  auto layer = requestor_layer(peer);
  if (!layer) return std::unexpected(layer.error());
  return std::unique_ptr<StoreSession>(std::make_unique<DcmtkStoreSession>(
      std::move(peer), std::move(calling_ae), timeout_s, std::move(*layer)));
}

Result<std::vector<std::uint16_t>> store_files(const Peer& peer, const std::string& calling_ae,
                                               const std::vector<fs::path>& files,
                                               std::uint32_t timeout_s,
                                               const StoreAnswer& on_answer) {
  if (files.empty()) return std::vector<std::uint16_t>{};
  auto session = StoreSession::create(peer, calling_ae, timeout_s);
  if (!session) return std::unexpected(session.error());
  return (*session)->store(files, on_answer);  // released as the session ends
}

Status check_study_key(StudyKey key, const std::string& value) {
  const char* what = key == StudyKey::study_uid          ? "a Study Instance UID"
                     : key == StudyKey::accession_number ? "an accession number"
                                                         : "a patient ID";
  if (value.empty() || value.size() > 64)
    return fail(ErrorCode::usage, std::string(what) + " must be 1 to 64 characters");
  // DICOM ignores padding: a value of spaces alone would match every study.
  if (value.front() == ' ' || value.back() == ' ')
    return fail(ErrorCode::usage, std::string(what) + " must not begin or end with a space");
  for (const char c : value)
    if (c < 0x20 || c > 0x7e || c == '*' || c == '?' || c == '\\')
      return fail(ErrorCode::usage,
                  std::string(what) + " must be printable, without '*', '?' or '\\' (they "
                                      "would match other studies)");
  if (key == StudyKey::study_uid &&
      !std::ranges::all_of(value, [](char c) { return c == '.' || (c >= '0' && c <= '9'); }))
    return fail(ErrorCode::usage, "a Study Instance UID is digits and dots");
  return {};
}

namespace {

// Opens an association with `peer` offering one query/retrieve SOP class; returns its
// presentation context ID. Fails with ErrorCode::io.
Result<T_ASC_PresentationContextID> open_query(Scu& scu, DcmTLSTransportLayer* layer,
                                               const Peer& peer, const char* sop_class) {
  OFList<OFString> syntaxes;
  syntaxes.push_back(UID_LittleEndianExplicitTransferSyntax);
  syntaxes.push_back(UID_LittleEndianImplicitTransferSyntax);
  scu.addPresentationContext(sop_class, syntaxes);
  OFCondition cond = open_network(scu, layer);
  if (cond.good()) cond = scu.negotiateAssociation();
  if (cond.bad()) {
    scu.abortAssociation();
    return fail(ErrorCode::io, "no association with " + peer_name(peer) + ": " + cond.text());
  }
  const T_ASC_PresentationContextID pres = scu.findAnyPresentationContextID(sop_class, "");
  if (pres == 0) {
    scu.releaseAssociation();
    return fail(ErrorCode::io, peer_name(peer) + " does not offer " +
                                   (std::strcmp(sop_class, UID_FINDStudyRootQueryRetrieveInformationModel) == 0
                                        ? "Study Root C-FIND"
                                        : "Study Root C-MOVE"));
  }
  return pres;
}

void end_association(Scu& scu) {
  if (scu.isConnected() && scu.releaseAssociation().bad()) scu.abortAssociation();
}

std::string hex(std::uint16_t status) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%04X", status);
  return text;
}

}  // namespace

Result<std::vector<std::string>> find_studies(const Peer& peer, const std::string& calling_ae,
                                              StudyKey key, const std::string& value,
                                              std::uint32_t timeout_s) {
  if (auto checked = check_study_key(key, value); !checked) return std::unexpected(checked.error());
  disable_nagle();
  std::unique_ptr<DcmTLSTransportLayer> layer;  // declared before the SCU: outlives it
  Scu scu;
  if (auto configured = configure(scu, peer, calling_ae, timeout_s, layer); !configured)
    return std::unexpected(configured.error());
  auto pres = open_query(scu, layer.get(), peer, UID_FINDStudyRootQueryRetrieveInformationModel);
  if (!pres) return std::unexpected(pres.error());
  DcmDataset query;
  query.putAndInsertOFStringArray(DCM_QueryRetrieveLevel, "STUDY");
  query.putAndInsertOFStringArray(DCM_StudyInstanceUID, "");
  const DcmTagKey tag = key == StudyKey::accession_number ? DCM_AccessionNumber
                        : key == StudyKey::patient_id     ? DCM_PatientID
                                                          : DCM_StudyInstanceUID;
  query.putAndInsertOFStringArray(tag, value.c_str());
  OFList<QRResponse*> responses;
  const OFCondition cond = scu.sendFINDRequest(*pres, &query, &responses);
  std::vector<std::string> studies;
  std::uint16_t last = kStatusProcessingFailure;
  for (QRResponse* response : responses) {
    last = response->m_status;
    OFString uid, matched;
    // Only studies whose key is the value asked for, exactly: a PACS that matches without
    // regard to case, or fuzzily, would otherwise have other patients' studies moved.
    if (response->m_dataset != nullptr &&
        response->m_dataset->findAndGetOFString(tag, matched).good() &&
        trimmed(matched.c_str()) == value &&
        response->m_dataset->findAndGetOFString(DCM_StudyInstanceUID, uid).good()) {
      std::string text = trimmed(uid.c_str());
      if (!text.empty() && std::ranges::find(studies, text) == studies.end())
        studies.push_back(std::move(text));
    }
    delete response;
  }
  end_association(scu);
  if (cond.bad())
    return fail(ErrorCode::io, "C-FIND with " + peer_name(peer) + " failed: " + cond.text());
  if (last != kStatusSuccess)
    return fail(ErrorCode::io, peer_name(peer) + " answered C-FIND with " + hex(last));
  return studies;
}

Result<MoveResult> move_study(const Peer& peer, const std::string& calling_ae,
                              const std::string& destination, const std::string& study_uid,
                              std::uint32_t timeout_s) {
  if (auto checked = check_study_key(StudyKey::study_uid, study_uid); !checked)
    return std::unexpected(checked.error());
  if (!valid_ae_title(destination))
    return fail(ErrorCode::usage, "the C-MOVE destination must be an AE title of 1 to 16 characters");
  disable_nagle();
  std::unique_ptr<DcmTLSTransportLayer> layer;  // declared before the SCU: outlives it
  Scu scu;
  if (auto configured = configure(scu, peer, calling_ae, timeout_s, layer); !configured)
    return std::unexpected(configured.error());
  auto pres = open_query(scu, layer.get(), peer, UID_MOVEStudyRootQueryRetrieveInformationModel);
  if (!pres) return std::unexpected(pres.error());
  DcmDataset keys;
  keys.putAndInsertOFStringArray(DCM_QueryRetrieveLevel, "STUDY");
  keys.putAndInsertOFStringArray(DCM_StudyInstanceUID, study_uid.c_str());
  OFList<RetrieveResponse*> responses;
  const OFCondition cond = scu.sendMOVERequest(*pres, destination.c_str(), &keys, &responses);
  MoveResult result;
  bool answered = false;
  for (RetrieveResponse* response : responses) {
    // The last answer (not pending) carries the final status and counts.
    if (response->m_status != 0xFF00 && response->m_status != 0xFF01) {
      answered = true;
      result.status = response->m_status;
      result.completed = response->m_numberOfCompletedSubops;
      result.failed = response->m_numberOfFailedSubops;
      result.warnings = response->m_numberOfWarningSubops;
    }
    delete response;
  }
  end_association(scu);
  if (!answered)
    return fail(ErrorCode::io, "C-MOVE with " + peer_name(peer) + " ended without a last answer" +
                                   (cond.bad() ? std::string(": ") + cond.text() : std::string()));
  return result;
}

}  // namespace radguard::net
