/* Where a client connects (see target.h). */
#include "grpc/target.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/alloc.h"
#include "core/buffer.h"
#include "grpc/credentials.h"

#define DNS_SCHEME "dns:///"
#define MAX_ENTRIES 64

/* The address of host for family (AF_INET or AF_INET6) as text, or false. */
static bool resolve(const char *host, int family, char *out, size_t out_size)
{
    struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_STREAM}, *found = NULL;
    if (getaddrinfo(host, NULL, &hints, &found) != 0 || found == NULL)
        return false;
    const void *bytes = family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)found->ai_addr)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)found->ai_addr)->sin6_addr;
    bool is_done = inet_ntop(family, bytes, out, (socklen_t)out_size) != NULL;
    freeaddrinfo(found);
    return is_done;
}

/* A list "a:1,b:2": each entry checked, all local or none, resolved into one ipv4: (or, when a
 * host has no IPv4 address, ipv6:) URI. */
static esg_status parse_list(const char *address, esg_target *out, esg_error *err)
{
    char entries[MAX_ENTRIES][300], host[256];
    size_t n = 0;
    for (const char *p = address;; n++) {
        size_t len = strcspn(p, ",");
        if (n == MAX_ENTRIES || len == 0 || len >= sizeof entries[0])
            return esg_error_set(err, ESG_ECONFIG,
                                 "address list '%.200s': expected up to %d host:port entries "
                                 "separated by commas, none empty",
                                 address, MAX_ENTRIES);
        memcpy(entries[n], p, len);
        entries[n][len] = '\0';
        /* (with host: a host too long for it is refused here, not met below) */
        esg_status rc = esg_address_split(entries[n], host, sizeof host, NULL, err);
        if (rc != ESG_OK)
            return rc;
        if (esg_address_is_local(entries[n]) != esg_address_is_local(entries[0]))
            return esg_error_set(err, ESG_ECONFIG,
                                 "address list '%.200s' mixes localhost:PORT (local credentials) "
                                 "with other hosts (mutual TLS): use one kind",
                                 address);
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    n++;
    /* Each host resolved once: to IPv4, or, when one host has none, all of them to IPv6. */
    char ips[MAX_ENTRIES][INET6_ADDRSTRLEN];
    int ports[MAX_ENTRIES], family = AF_INET;
    for (size_t i = 0; i < n; i++) {
        esg_address_split(entries[i], host, sizeof host, &ports[i], NULL);
        if (resolve(host, family, ips[i], sizeof ips[i]))
            continue;
        if (family == AF_INET6)
            return esg_error_set(err, ESG_EUNAVAILABLE,
                                 "address list '%.200s': cannot resolve '%s'", address, host);
        family = AF_INET6; /* and again from the first host */
        i = (size_t)-1;
    }
    esg_buffer uri = {0};
    esg_buffer_put_str(&uri, family == AF_INET ? "ipv4:" : "ipv6:");
    for (size_t i = 0; i < n; i++) {
        char item[INET6_ADDRSTRLEN + 16];
        snprintf(item, sizeof item, family == AF_INET ? "%s%s:%d" : "%s[%s]:%d", i ? "," : "",
                 ips[i], ports[i]);
        esg_buffer_put_str(&uri, item);
    }
    if ((out->uri = esg_buffer_take(&uri, NULL)) == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory");
    out->is_balanced = true;
    snprintf(out->credentials_address, sizeof out->credentials_address, "%s", entries[0]);
    if (!esg_address_is_local(entries[0])) {
        esg_address_split(entries[0], host, sizeof host, NULL, NULL);
        snprintf(out->tls_name, sizeof out->tls_name, "%s", host);
    }
    return ESG_OK;
}

bool esg_target_is_balanced(const char *address)
{
    return address != NULL &&
           (strchr(address, ',') != NULL || strncmp(address, DNS_SCHEME, strlen(DNS_SCHEME)) == 0);
}

esg_status esg_target_parse(const char *address, esg_target *out, esg_error *err)
{
    memset(out, 0, sizeof *out);
    if (address == NULL || address[0] == '\0')
        return esg_error_set(err, ESG_ECONFIG, "no server address to connect to");
    if (strchr(address, ',') != NULL)
        return parse_list(address, out, err);
    const char *host_port = address;
    if (strncmp(address, DNS_SCHEME, strlen(DNS_SCHEME)) == 0) {
        host_port = address + strlen(DNS_SCHEME);
        out->is_balanced = true;
    }
    esg_status rc = esg_address_split(host_port, NULL, 0, NULL, err);
    if (rc != ESG_OK)
        return rc;
    if (strlen(host_port) >= sizeof out->credentials_address)
        return esg_error_set(err, ESG_ECONFIG, "address '%.100s...' is too long", address);
    snprintf(out->credentials_address, sizeof out->credentials_address, "%s", host_port);
    if ((out->uri = esg_strdup(address)) == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory");
    return ESG_OK;
}

void esg_target_clear(esg_target *target)
{
    esg_free(target->uri);
    memset(target, 0, sizeof *target);
}
