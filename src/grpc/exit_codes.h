/* The exit statuses of the console programs, one contract for all three, and for the runner,
 * which reads its servers' exit statuses. Internal to the gRPC layer and the programs. */
#ifndef ESG_EXIT_CODES_H
#define ESG_EXIT_CODES_H

#include "esg/error.h"

enum esg_exit_code {
    ESG_EXIT_OK = 0,
    ESG_EXIT_SERVER_DIED = 1, /* the runner: a server died while the system ran */
    ESG_EXIT_USAGE = 2,       /* a bad command line */
    ESG_EXIT_CONFIG = 3,      /* a bad or missing setting: topic, address, certificate, ... */
    ESG_EXIT_UNAVAILABLE = 4, /* could not serve (address in use, database down), or the server
                               * did not answer (the client) */
    ESG_EXIT_REFUSED = 5,     /* the client: the server answered with an error status */
};

/* How a program that starts something (the server, the runner) exits on rc. */
static inline int esg_exit_code_of_start(esg_status rc)
{
    switch (rc) {
    case ESG_OK:
        return ESG_EXIT_OK;
    case ESG_EINVAL:
    case ESG_ENOTFOUND:
    case ESG_ECONFIG:
        return ESG_EXIT_CONFIG;
    default:
        return ESG_EXIT_UNAVAILABLE;
    }
}

/* What a server's exit status says, for the runner's messages ("" when it says nothing). */
static inline const char *esg_exit_code_meaning(int code)
{
    switch (code) {
    case ESG_EXIT_USAGE:
        return " (bad command line)";
    case ESG_EXIT_CONFIG:
        return " (bad configuration: see its output)";
    case ESG_EXIT_UNAVAILABLE:
        return " (could not serve: see its output)";
    default:
        return "";
    }
}

#endif
