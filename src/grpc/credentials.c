/* Credentials follow the address as the reference's do: exactly "localhost:PORT" gets gRPC
 * local credentials, any other address (127.0.0.1 and [::1] too) mutual TLS from the three
 * GRPC_SSL_* files (each looked up as <APP>_GRPC_SSL_... first), checked here so that a bad path
 * or a swapped file is a clear ESG_ECONFIG, not a failed handshake. The caller must have called
 * grpc_init() before creating credentials. */
#include "grpc/credentials.h"

#include "core/settings.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/alloc.h"

/* Certificates and keys are a few KiB; a cap keeps a wrong path (a log, a
 * device) from being read into memory whole. */
#define PEM_MAX_BYTES (1024 * 1024)

#define KEY_VARIABLE "GRPC_SSL_PRIVATE_KEY_PATH"
#define CERTIFICATE_VARIABLE "GRPC_SSL_CERTIFICATE_PATH"
#define ROOT_VARIABLE "GRPC_SSL_ROOT_CERTIFICATE_PATH"

/* The three PEM texts for mutual TLS, NUL-terminated as gRPC wants them, and where each came
 * from ("GRPC_SSL_CERTIFICATE_PATH 'ssl/orders.crt'"), for messages. */
typedef struct tls_files {
    char *private_key; /* secret: wiped before it is freed */
    size_t private_key_len;
    char *certificate; /* this side's certificate chain */
    size_t certificate_len;
    char *root; /* the CA that the other side's certificate must chain to */
    size_t root_len;
    char private_key_source[400];
    char certificate_source[400];
    char root_source[400];
} tls_files;

esg_status esg_address_split(const char *address, char *host_out, size_t host_size, int *port,
                             esg_error *err)
{
    if (address == NULL || *address == '\0')
        return esg_error_set(err, ESG_ECONFIG, "empty address: expected 'host:port'");

    const char *host, *host_end, *port_text;
    if (address[0] == '[') {
        host = address + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL)
            return esg_error_set(err, ESG_ECONFIG, "address '%s' has no closing ']'", address);
        if (host_end[1] != ':')
            return esg_error_set(err, ESG_ECONFIG,
                                 "address '%s' has no port: expected '[host]:port'", address);
        port_text = host_end + 2;
    } else {
        const char *colon = strrchr(address, ':');
        if (colon == NULL)
            return esg_error_set(err, ESG_ECONFIG, "address '%s' has no port: expected 'host:port'",
                                 address);
        host = address;
        host_end = colon;
        port_text = colon + 1;
        /* gRPC reads "::1:50051" as a host without a port; refuse the guess. */
        if (memchr(host, ':', (size_t)(host_end - host)) != NULL)
            return esg_error_set(err, ESG_ECONFIG,
                                 "address '%s': an IPv6 host needs brackets, e.g. '[::1]:50051'",
                                 address);
    }

    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0)
        return esg_error_set(err, ESG_ECONFIG, "address '%s' has an empty host", address);
    for (size_t i = 0; i < host_len; i++) {
        unsigned char c = (unsigned char)host[i];
        if (isspace(c) || iscntrl(c) || c == '[' || c == ']' || c == '/')
            return esg_error_set(err, ESG_ECONFIG, "address '%s' has a bad character in its host",
                                 address);
    }

    if (*port_text == '\0')
        return esg_error_set(err, ESG_ECONFIG, "address '%s' has an empty port", address);
    long port_value = 0;
    for (const char *p = port_text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return esg_error_set(err, ESG_ECONFIG,
                                 "address '%s': the port must be a number from 0 to 65535",
                                 address);
        port_value = port_value * 10 + (*p - '0');
        if (port_value > 65535)
            return esg_error_set(err, ESG_ECONFIG,
                                 "address '%s': the port must be a number from 0 to 65535",
                                 address);
    }

    if (host_out != NULL) {
        if (host_len >= host_size)
            return esg_error_set(err, ESG_ECONFIG, "address '%s' has a host longer than %zu bytes",
                                 address, host_size ? host_size - 1 : 0);
        memcpy(host_out, host, host_len);
        host_out[host_len] = '\0';
    }
    if (port != NULL)
        *port = (int)port_value;
    return ESG_OK;
}

bool esg_address_is_local(const char *address)
{
    /* Python's fullmatch("localhost:[0-9]+", address): nothing else, not even LOCALHOST. */
    if (address == NULL || strncmp(address, "localhost:", 10) != 0 || address[10] == '\0')
        return false;
    return strspn(address + 10, "0123456789") == strlen(address + 10);
}

bool esg_address_is_loopback(const char *address)
{
    char host[256];
    if (esg_address_split(address, host, sizeof host, NULL, NULL) != ESG_OK)
        return false;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    /* inet_pton takes only full dotted quads, so "127.1" or "127.0.0.1.example" is not local. */
    struct in_addr v4;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    struct in6_addr v6;
    if (address[0] == '[' && inet_pton(AF_INET6, host, &v6) == 1)
        return memcmp(&v6, &in6addr_loopback, sizeof v6) == 0;
    return false;
}

static void wipe_and_free(char *data, size_t len)
{
    if (data == NULL)
        return;
    explicit_bzero(data, len);
    esg_free(data);
}

/* Reads the PEM file named by variable into *out (NUL-terminated, *out_len
 * bytes). marker is a text every file of its kind holds, e.g. "PRIVATE KEY-----",
 * so that a key and a certificate given the wrong way round are caught here. */
static esg_status read_pem_file(const esg_env *env, const char *app_name, const char *address,
                                const char *key, const char *marker, char **out, size_t *out_len,
                                char source[400], esg_error *err)
{
    esg_status rc = ESG_OK;
    char *data = NULL;
    size_t len = 0;
    int fd = -1;

    *out = NULL;
    *out_len = 0;
    esg_setting setting;
    esg_setting_lookup(env, app_name, key, &setting);
    const char *variable = setting.key;
    const char *path = setting.value;
    snprintf(source, 400, "%.120s '%.250s'", variable, path != NULL ? path : "");
    if (path == NULL || *path == '\0') {
        rc = esg_error_set(err, ESG_ECONFIG,
                           "%s%s %s set (address '%s' is not localhost:PORT, so it needs "
                           "mutual TLS: only localhost:PORT has local credentials, as in Python)",
                           strchr(setting.tried, ',') != NULL ? "none of " : "", setting.tried,
                           strchr(setting.tried, ',') != NULL ? "is" : "is not", address);
        goto out;
    }

    fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = esg_error_set(err, ESG_ECONFIG, "cannot read %s '%s': %s", variable, path,
                           strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = esg_error_set(err, ESG_ECONFIG, "cannot read %s '%s': not a regular file", variable,
                           path);
        goto out;
    }
    if (st.st_size > PEM_MAX_BYTES) {
        rc = esg_error_set(err, ESG_ECONFIG, "%s '%s' is larger than %d bytes: not a PEM file",
                           variable, path, PEM_MAX_BYTES);
        goto out;
    }

    size_t capacity = (size_t)st.st_size;
    data = esg_malloc(capacity + 1);
    if (data == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory reading %s", variable);
        goto out;
    }
    while (len < capacity) {
        ssize_t n = read(fd, data + len, capacity - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = esg_error_set(err, ESG_ECONFIG, "cannot read %s '%s': %s", variable, path,
                               strerror(errno));
            goto out;
        }
        if (n == 0)
            break; /* the file shrank meanwhile: what was read is checked below */
        len += (size_t)n;
    }
    data[len] = '\0';

    /* gRPC takes the PEM as a C string: an embedded NUL would cut it silently. */
    if (strlen(data) != len || strstr(data, "-----BEGIN ") == NULL ||
        strstr(data, "-----END ") == NULL) {
        rc = esg_error_set(err, ESG_ECONFIG, "%s '%s' does not look like PEM", variable, path);
        goto out;
    }
    if (strstr(data, marker) == NULL) {
        rc = esg_error_set(err, ESG_ECONFIG, "%s '%s' does not look like PEM: no '%s' in it",
                           variable, path, marker);
        goto out;
    }

    *out = data;
    *out_len = len;
    data = NULL;
out:
    if (fd >= 0)
        close(fd);
    wipe_and_free(data, len);
    return rc;
}

/* The first certificate of a PEM text, or NULL. The caller frees it with X509_free. */
static X509 *first_certificate(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509 *certificate = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return certificate;
}

/* A certificate that is in force now, or ESG_ECONFIG saying from or until when it is not. */
static esg_status check_validity(X509 *certificate, const char *source, esg_error *err)
{
    const ASN1_TIME *not_after = X509_get0_notAfter(certificate);
    const ASN1_TIME *not_before = X509_get0_notBefore(certificate);
    bool is_expired = X509_cmp_current_time(not_after) < 0;
    bool is_early = X509_cmp_current_time(not_before) > 0;
    if (!is_expired && !is_early)
        return ESG_OK;
    char when[64] = "";
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio != NULL && ASN1_TIME_print(bio, is_expired ? not_after : not_before) == 1)
        BIO_read(bio, when, sizeof when - 1);
    BIO_free(bio);
    return esg_error_set(err, ESG_ECONFIG, "the certificate in %s %s %s", source,
                         is_expired ? "expired on" : "is not valid before", when);
}

/* Refuses, at start and saying why, what the TLS handshake would otherwise fail on later with
 * only "socket closed" or an internal dump: a key that is not the certificate's, a certificate or
 * root that is not in force, a file OpenSSL cannot read. */
static esg_status tls_files_check(const tls_files *files, esg_error *err)
{
    BIO *bio = BIO_new_mem_buf(files->private_key, (int)files->private_key_len);
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    X509 *certificate = first_certificate(files->certificate, files->certificate_len);
    X509 *root = first_certificate(files->root, files->root_len);
    esg_status rc = ESG_OK;
    if (key == NULL)
        rc = esg_error_set(err, ESG_ECONFIG,
                           "%s holds no private key OpenSSL can read (one "
                           "with a passphrase cannot be used)",
                           files->private_key_source);
    else if (certificate == NULL || root == NULL)
        rc = esg_error_set(err, ESG_ECONFIG, "%s holds no certificate OpenSSL can read",
                           certificate == NULL ? files->certificate_source : files->root_source);
    else if (X509_check_private_key(certificate, key) != 1)
        rc =
            esg_error_set(err, ESG_ECONFIG, "the key in %s is not the key of the certificate in %s",
                          files->private_key_source, files->certificate_source);
    if (rc == ESG_OK)
        rc = check_validity(certificate, files->certificate_source, err);
    if (rc == ESG_OK)
        rc = check_validity(root, files->root_source, err);
    ERR_clear_error(); /* OpenSSL's queue holds what failed: said above in our words */
    EVP_PKEY_free(key);
    X509_free(certificate);
    X509_free(root);
    return rc;
}

static void tls_files_free(tls_files *files)
{
    wipe_and_free(files->private_key, files->private_key_len);
    wipe_and_free(files->certificate, files->certificate_len);
    wipe_and_free(files->root, files->root_len);
    *files = (tls_files){0};
}

static esg_status tls_files_read(const esg_env *env, const char *app_name, const char *address,
                                 tls_files *files, esg_error *err)
{
    *files = (tls_files){0};
    esg_status rc =
        read_pem_file(env, app_name, address, KEY_VARIABLE, "PRIVATE KEY-----", &files->private_key,
                      &files->private_key_len, files->private_key_source, err);
    if (rc == ESG_OK)
        rc = read_pem_file(env, app_name, address, CERTIFICATE_VARIABLE,
                           "-----BEGIN CERTIFICATE-----", &files->certificate,
                           &files->certificate_len, files->certificate_source, err);
    if (rc == ESG_OK)
        rc = read_pem_file(env, app_name, address, ROOT_VARIABLE, "-----BEGIN CERTIFICATE-----",
                           &files->root, &files->root_len, files->root_source, err);
    if (rc == ESG_OK)
        rc = tls_files_check(files, err);
    if (rc != ESG_OK)
        tls_files_free(files);
    return rc;
}

/* The credentials of a server (server_out) or of a channel (channel_out; the other is NULL) for
 * address: local ones for localhost:PORT, else mutual TLS from the files. */
static esg_status credentials_create(const char *address, const esg_env *env, const char *app_name,
                                     grpc_server_credentials **server_out,
                                     grpc_channel_credentials **channel_out, esg_error *err)
{
    esg_status rc = esg_address_split(address, NULL, 0, NULL, err);
    if (rc != ESG_OK)
        return rc;
    const char *side = server_out != NULL ? "server" : "channel";
    bool is_made = false;
    if (esg_address_is_local(address)) {
        if (server_out != NULL)
            is_made = (*server_out = grpc_local_server_credentials_create(LOCAL_TCP)) != NULL;
        else
            is_made = (*channel_out = grpc_local_credentials_create(LOCAL_TCP)) != NULL;
        if (!is_made)
            return esg_error_set(err, ESG_EINTERNAL, "gRPC made no local %s credentials", side);
        return ESG_OK;
    }

    tls_files files;
    rc = tls_files_read(env, app_name, address, &files, err);
    if (rc != ESG_OK)
        return rc;
    /* gRPC copies the PEM strings, so ours can be wiped as soon as this returns. Both sides
     * present a certificate and verify the other's (mutual TLS). */
    grpc_ssl_pem_key_cert_pair pair = {files.private_key, files.certificate};
    if (server_out != NULL)
        is_made = (*server_out = grpc_ssl_server_credentials_create_ex(
                       files.root, &pair, 1,
                       GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL)) != NULL;
    else
        is_made =
            (*channel_out = grpc_ssl_credentials_create(files.root, &pair, NULL, NULL)) != NULL;
    if (!is_made)
        rc =
            esg_error_set(err, ESG_ECONFIG, "gRPC refused the TLS files for address '%s'", address);
    tls_files_free(&files);
    return rc;
}

esg_status esg_server_credentials_create(const char *address, const esg_env *env,
                                         const char *app_name, grpc_server_credentials **out,
                                         esg_error *err)
{
    *out = NULL;
    return credentials_create(address, env, app_name, out, NULL, err);
}

esg_status esg_channel_credentials_create(const char *address, const esg_env *env,
                                          const char *app_name, grpc_channel_credentials **out,
                                          esg_error *err)
{
    *out = NULL;
    return credentials_create(address, env, app_name, NULL, out, err);
}
