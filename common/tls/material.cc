#include "common/tls/material.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

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
absl::StatusOr<std::string> ReadFile(std::string_view flag, const std::string& path) {
  if (path.empty())
    return absl::InvalidArgumentError(absl::StrCat(Av(flag), " is empty (a PEM file is needed)"));
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) return TlsFileError(flag, path, absl::StrCat("cannot read: ", std::strerror(errno)));
  std::string contents;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, file.get())) > 0) {
    contents.append(buf, n);
    if (contents.size() > kMaxFileSize) return TlsFileError(flag, path, "larger than 1 MiB, not a PEM file");
  }
  if (std::ferror(file.get()))
    return TlsFileError(flag, path, absl::StrCat("cannot read: ", std::strerror(errno)));
  return contents;
}

}  // namespace

absl::Status TlsFileError(std::string_view flag, const std::string& path, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(Av(flag), " ", path, ": ", Av(problem)));
}

absl::StatusOr<TlsMaterial> ReadTlsFiles(const TlsFiles& files) {
  TlsMaterial material;
  absl::StatusOr<std::string> ca = ReadFile("--ca-file", files.ca_file);
  if (!ca.ok()) return ca.status();
  absl::StatusOr<std::string> cert = ReadFile("--cert-file", files.cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile("--key-file", files.key_file);
  if (!key.ok()) return key.status();
  material.ca_pem = *std::move(ca);
  material.cert_pem = *std::move(cert);
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
