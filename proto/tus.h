/*
 * proto/tus.h — tus 1.0 (https://tus.io/protocols/resumable-upload) header
 * parsing, checksum verification, client file-name sanitising and the HTTP
 * date of Upload-Expires. docs/media.md describes how the gateway uses them.
 *
 * Pure functions, no allocation; any thread. Header values are given as
 * (pointer, length) and need not be NUL-terminated.
 */
#ifndef BG_PROTO_TUS_H
#define BG_PROTO_TUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define BG_TUS_VERSION "1.0.0"
#define BG_TUS_EXTENSIONS "creation,creation-with-upload,checksum,termination,expiration"
#define BG_TUS_CHECKSUM_ALGOS "md5,sha1,sha256"

#define BG_TUS_METADATA_MAX_PAIRS 64
#define BG_TUS_NAME_MAX 200      /* longest sanitised file name, in bytes */
#define BG_TUS_DIGEST_MAX 64     /* largest digest bg_tus_checksum_parse writes */
#define BG_TUS_HTTP_DATE_LEN 29  /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Upload-Metadata: comma-separated pairs "key" or "key SP base64value".
 * Spaces and tabs around a pair are ignored (OWS, and "a 1, b 2" as some
 * clients send it); a header that is empty or only whitespace has no pairs.
 * Keys are 1+ bytes of printable ASCII other than ',' (0x21..0x7e), unique,
 * compared case-sensitively. Values are standard base64 (RFC 4648 section 4)
 * with or without the '=' padding; unused trailing bits must be zero.
 *
 * Finds key (NUL-terminated) and decodes its value into out, appending a
 * NUL; *outlen receives the decoded length without that NUL. A key present
 * without a value decodes to "" (outlen 0). The value may contain NUL bytes:
 * callers that want text compare *outlen with strlen(out).
 * The whole header is validated, not only the pair asked for.
 * Errors: BG_EINVAL (malformed header: bad base64, empty key, a byte outside
 * the key alphabet, more than one space in a pair, duplicate key, more than
 * BG_TUS_METADATA_MAX_PAIRS pairs), BG_ENOTFOUND (valid header without key),
 * BG_ETOOBIG (the decoded value and its NUL do not fit in cap bytes).
 * out and *outlen are written only on success. */
bg_err bg_tus_metadata_get(const char *hdr, size_t len, const char *key, char *out, size_t cap,
                           size_t *outlen);

/* Validates a whole Upload-Metadata header with the rules above.
 * Errors: BG_EINVAL. */
bg_err bg_tus_metadata_check(const char *hdr, size_t len);

typedef enum bg_tus_algo { BG_TUS_MD5 = 1, BG_TUS_SHA1, BG_TUS_SHA256 } bg_tus_algo;

/* Upload-Checksum: "<algo> SP <base64 digest>" with algo one of "md5",
 * "sha1", "sha256" (lower case, as the IANA hash names are). The digest
 * must decode (padding optional) to exactly 16, 20 or 32 bytes.
 * On success *algo, digest[0..*dlen) and *dlen are written.
 * Errors: BG_EINVAL (no space, empty algo, bad base64, wrong digest length),
 * BG_ENOTFOUND (a well-formed algorithm name that is not supported: the
 * gateway answers 400 CHECKSUM_ALGORITHM_UNSUPPORTED; checked before the
 * digest, so "crc32 <anything>" is BG_ENOTFOUND). */
bg_err bg_tus_checksum_parse(const char *hdr, size_t len, bg_tus_algo *algo,
                             uint8_t digest[BG_TUS_DIGEST_MAX], size_t *dlen);

/* True when the algo digest of data[0..len) (OpenSSL EVP_Digest) equals
 * digest[0..dlen), compared in constant time. False for a dlen that is not
 * the algorithm's size, an unknown algo, or when OpenSSL refuses the
 * algorithm (e.g. MD5 under a FIPS-only provider). */
bool bg_tus_checksum_verify(bg_tus_algo algo, const void *data, size_t len, const uint8_t *digest,
                            size_t dlen);

/* Sanitises a client file name in[0..len) (may contain NUL) into out,
 * NUL-terminated; cap must be at least BG_TUS_NAME_MAX + 1.
 * Rejects (BG_EINVAL) an empty name, any control character (bytes < 0x20
 * including NUL, 0x7f, and the C1 controls U+0080..U+009F), and invalid
 * UTF-8 (overlong forms, surrogates, > U+10FFFF, truncated sequences); the
 * whole input is checked, also past the truncation point.
 * Then every ASCII byte outside [A-Za-z0-9._ +()-] (so '/' and '\\') becomes
 * '_', multibyte UTF-8 sequences are kept, a leading '.' becomes '_', and the
 * result is cut to at most BG_TUS_NAME_MAX bytes at a character boundary.
 * The result is never empty, never "." or "..", never starts with '.' and
 * never contains '/'. "../../x" -> "_._.._x". A cap below
 * BG_TUS_NAME_MAX + 1 is a broken contract (assert; BG_EINVAL without
 * assertions). out is written only on success. */
bg_err bg_tus_sanitize_name(const char *in, size_t len, char *out, size_t cap);

/* RFC 7231 IMF-fixdate of a unix time in milliseconds (rounded down to the
 * second), e.g. "Sun, 06 Nov 1994 08:49:37 GMT", into out (cap at least
 * BG_TUS_HTTP_DATE_LEN + 1). Times before 1970 are written as the epoch and
 * times after 9999-12-31T23:59:59Z as that instant, so the year always has
 * four digits. For Upload-Expires. */
void bg_tus_http_date(long long unix_ms, char *out, size_t cap);

#endif
