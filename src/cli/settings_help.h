/* The settings the server and the runner read (the runner passes them on to its servers), as
 * one text for both programs' --help. Each key is looked up as <APP>_KEY first (APP is the
 * application's name in upper case), then KEY, as Python's Environment does. */
#ifndef ESG_SETTINGS_HELP_H
#define ESG_SETTINGS_HELP_H

#define ESG_SETTINGS_HELP                                                                          \
    "gRPC (each also <APP>_-prefixed):\n"                                                          \
    "  <APP>_GRPC_SERVER_ADDRESS       host:port of the application's server (e.g.\n"              \
    "                                  ORDERS_GRPC_SERVER_ADDRESS); for replicas a list\n"         \
    "                                  (host:port,host:port) or dns:///name:port, called\n"        \
    "                                  round robin\n"                                              \
    "  GRPC_LISTEN_ADDRESS             host:port this replica listens on, when\n"                  \
    "                                  <APP>_GRPC_SERVER_ADDRESS names the replicas\n"             \
    "  MAX_PULL_INTERVAL               seconds a follower waits for a Prompt before it pulls\n"    \
    "                                  anyway (default 10)\n"                                      \
    "  GRPC_SSL_PRIVATE_KEY_PATH       mutual TLS, for every address but localhost:PORT (which\n"  \
    "  GRPC_SSL_CERTIFICATE_PATH         has local credentials): this side's key and\n"            \
    "  GRPC_SSL_ROOT_CERTIFICATE_PATH    certificate, and the CA the peer's must chain to\n"       \
    "  GRPC_HEALTH_SERVER_ADDRESS      host:port where the health service alone is also\n"         \
    "                                  served, in plaintext (Kubernetes' gRPC probes)\n"           \
    "  METRICS_SERVER_ADDRESS          host:port where Prometheus metrics are served over\n"       \
    "                                  plaintext HTTP at /metrics (default: not served)\n"         \
    "\n"                                                                                           \
    "Persistence, as eventsourcing 9.2 (each also <APP>_-prefixed):\n"                             \
    "  PERSISTENCE_MODULE              eventsourcing.popo (in memory, the default),\n"             \
    "                                  eventsourcing.sqlite or eventsourcing.postgres (the\n"      \
    "                                  legacy INFRASTRUCTURE_FACTORY and FACTORY_TOPIC too)\n"     \
    "  SQLITE_DBNAME                   the SQLite file (one per application)\n"                    \
    "  SQLITE_LOCK_TIMEOUT             seconds to wait for another writer (default 5)\n"           \
    "  CREATE_TABLE                    y (default) or n: use tables made by others\n"              \
    "  POSTGRES_DBNAME, POSTGRES_HOST, POSTGRES_USER, POSTGRES_PASSWORD   required for\n"          \
    "                                  PostgreSQL (POSTGRES_HOST: one host or several,\n"          \
    "                                  \"db-1,db-2\"); POSTGRES_PORT (5432, or one per host),\n"   \
    "                                  POSTGRES_TARGET_SESSION_ATTRS (read-write with several\n"   \
    "                                  hosts: the primary),\n"                                     \
    "                                  POSTGRES_CONNECT_TIMEOUT (5 s), POSTGRES_LOCK_TIMEOUT\n"    \
    "                                  (0: none), POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT\n"  \
    "                                  (5 s), POSTGRES_POOL_SIZE (5),\n"                           \
    "                                  POSTGRES_POOL_MAX_OVERFLOW (10), POSTGRES_POOL_TIMEOUT\n"   \
    "                                  (30 s), POSTGRES_CONN_MAX_AGE (none), POSTGRES_PRE_PING\n"  \
    "                                  (n), POSTGRES_SCHEMA\n"                                     \
    "  CIPHER_KEY                      16, 24 or 32 bytes in base64: encrypts stored state with\n" \
    "                                  AES-GCM (make one: openssl rand -base64 32)\n"              \
    "  CIPHER_TOPIC                    eventsourcing.cipher:AESCipher (what CIPHER_KEY alone\n"    \
    "                                  selects)\n"                                                 \
    "  COMPRESSOR_TOPIC                eventsourcing.compressor:ZlibCompressor or zlib\n"          \
    "  IS_SNAPSHOTTING_ENABLED         y: a snapshots table beside the events (default n)\n"       \
    "  AGGREGATE_CACHE_MAXSIZE         aggregates kept in memory (<= 0: no bound; default\n"       \
    "                                  none)\n"                                                    \
    "  AGGREGATE_CACHE_FASTFORWARD     y (default): reads what others wrote after the cached\n"    \
    "                                  version; n: trusts the cache (one writer only)\n"           \
    "  AGGREGATE_CACHE_FASTFORWARD_SKIPPING   y: no wait for another thread's fast-forward\n"      \
    "  DEEPCOPY_FROM_AGGREGATE_CACHE   y only (every get returns a copy)\n"                        \
    "  IDEMPOTENCY_KEY_TTL             seconds a command's idempotency key is kept, its repeats\n" \
    "                                  answered with its first reply (default 3600; 0: off)\n"     \
    "\n"                                                                                           \
    "  ESG_TOPIC_PATH                  folders of shared libraries that define topics\n"           \
    "\n"                                                                                           \
    "The log (each also <APP>_-prefixed; errors and warnings on stderr, the rest on stdout):\n"    \
    "  LOG_LEVEL                       error, warning, info (default) or debug (adds a line\n"     \
    "                                  per request: method, status, duration, peer)\n"             \
    "  LOG_FORMAT                      text (default) or json (JSON lines: time, level, app,\n"    \
    "                                  message)\n"                                                 \
    "\n"                                                                                           \
    "A setting with a bad value is refused at start (exit status 3), naming it; a variable\n"      \
    "spelt within two letters of a setting is named in a warning.\n"

#endif
