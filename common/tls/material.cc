#include "common/tls/material.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace fleet::tls {
namespace {

// Debian's abseil has its own string_view type; this bridges std::string_view.
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// PEM files of a CA bundle, a chain or a key are a few KiB; anything much
// larger is not what the flag should name.
constexpr size_t kMaxFileSize = 1 << 20;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Bio = std::unique_ptr<BIO, BioFree>;

absl::Status FileError(std::string_view flag, const std::string& path, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(Av(flag), " ", path, ": ", Av(problem)));
}

absl::StatusOr<std::string> ReadFile(std::string_view flag, const std::string& path) {
  if (path.empty())
    return absl::InvalidArgumentError(absl::StrCat(Av(flag), " is empty (a PEM file is needed)"));
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) return FileError(flag, path, absl::StrCat("cannot read: ", std::strerror(errno)));
  std::string contents;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, file.get())) > 0) {
    contents.append(buf, n);
    if (contents.size() > kMaxFileSize) return FileError(flag, path, "larger than 1 MiB, not a PEM file");
  }
  if (std::ferror(file.get()))
    return FileError(flag, path, absl::StrCat("cannot read: ", std::strerror(errno)));
  return contents;
}

Bio MemoryBio(const std::string& data) {
  return Bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

}  // namespace

std::vector<Cert> ReadCerts(const std::string& pem) {
  std::vector<Cert> certs;
  Bio bio = MemoryBio(pem);
  while (bio != nullptr) {
    Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) break;
    certs.push_back(std::move(cert));
  }
  // The read that ends the loop leaves "no start line" in the thread's queue.
  ERR_clear_error();
  return certs;
}

PrivateKey ReadPrivateKey(const std::string& pem) {
  Bio bio = MemoryBio(pem);
  PrivateKey key(bio == nullptr ? nullptr : PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return key;
}

absl::StatusOr<TlsMaterial> LoadTlsFiles(const TlsFiles& files) {
  TlsMaterial material;
  absl::StatusOr<std::string> ca = ReadFile("--ca-file", files.ca_file);
  if (!ca.ok()) return ca.status();
  if (ReadCerts(*ca).empty()) return FileError("--ca-file", files.ca_file, "no certificate in the file");
  material.ca_pem = *std::move(ca);

  absl::StatusOr<std::string> cert = ReadFile("--cert-file", files.cert_file);
  if (!cert.ok()) return cert.status();
  std::vector<Cert> chain = ReadCerts(*cert);
  if (chain.empty()) return FileError("--cert-file", files.cert_file, "no certificate in the file");
  material.cert_pem = *std::move(cert);

  absl::StatusOr<std::string> key = ReadFile("--key-file", files.key_file);
  if (!key.ok()) return key.status();
  PrivateKey pkey = ReadPrivateKey(*key);
  if (pkey == nullptr) {
    return FileError("--key-file", files.key_file, "no private key in the file (or it is encrypted)");
  }
  if (X509_check_private_key(chain.front().get(), pkey.get()) != 1) {
    ERR_clear_error();
    return FileError("--key-file", files.key_file,
                     absl::StrCat("the key does not belong to the certificate in ", files.cert_file));
  }
  material.key_pem = *std::move(key);
  return material;
}

absl::Status ConflictError() {
  return absl::InvalidArgumentError(
      "--insecure and the TLS files (--ca-file, --cert-file, --key-file) exclude each other: give one "
      "or the other");
}

TransportChoice ChooseTransport(const TlsFiles& files, bool insecure) {
  int given = !files.ca_file.empty() + !files.cert_file.empty() + !files.key_file.empty();
  if (insecure) return given == 0 ? TransportChoice::kPlaintext : TransportChoice::kConflict;
  if (given == 3) return TransportChoice::kMutualTls;
  return given == 0 ? TransportChoice::kNoFiles : TransportChoice::kSomeFiles;
}

}  // namespace fleet::tls
