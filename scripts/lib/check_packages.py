"""Checks that every script installs what it uses (run by scripts/check-packages.sh).

For each shell script of the repository: the external commands it calls, read from shfmt's
syntax tree (builtins, functions it defines, and words that are not plain literals, such as a
"$program" of the project's, are left out; wrappers such as sudo, timeout or xargs count with the
command they run), and the commands its package sets promise (scripts/lib/packages.sh). Each must
be a file of a Debian package that is either of Priority "required" (what a minbase Debian 12 has)
or installed by one of the script's sets, directly or as a dependency. Commands are looked up in
Debian's folders only, so a program installed elsewhere (pyenv's python3, a Node.js in
/usr/local) never counts. Prints what is wrong and exits 1, or prints a summary.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

BUILTINS = set("""
. : [ alias bg bind break builtin caller cd command compgen complete compopt continue
declare dirs disown echo enable eval exec exit export false fc fg getopts hash help history
jobs kill let local logout mapfile popd printf pushd pwd read readarray readonly return set
shift shopt source suspend test times trap true type typeset ulimit umask unalias unset wait
""".split())
# Commands that run the command given in their arguments (after their options).
WRAPPERS = {"sudo", "timeout", "xargs", "env", "nice", "nohup", "setsid", "unshare",
            "runuser", "stdbuf", "time", "exec", "ionice", "taskset", "chroot"}
# Options of those wrappers that take a value in the next word.
OPTIONS_WITH_VALUE = {"-u", "-g", "-s", "-k", "-n", "-I", "-L", "-P", "-d", "--signal",
                      "--kill-after", "-c"}


def literal(word):
    """The text of a word made only of literals (quoted or not), else None."""
    text = ""
    for part in word.get("Parts", []):
        kind = part.get("Type")
        if kind == "Lit":
            text += part.get("Value", "")
        elif kind == "SglQuoted":
            text += part.get("Value", "")
        elif kind == "DblQuoted":
            inner = literal(part)
            if inner is None:
                return None
            text += inner
        else:
            return None
    return text


def variable_name(word):
    """The name of a word that is one "$variable", else an empty string."""
    parts = word.get("Parts", [])
    if len(parts) == 1 and parts[0].get("Type") == "DblQuoted":
        parts = parts[0].get("Parts", [])
    if len(parts) == 1 and parts[0].get("Type") == "ParamExp":
        return parts[0].get("Param", {}).get("Value", "")
    return ""


def command_of(args):
    """The command name an argument list runs, seeing through wrappers."""
    i = 0
    while i < len(args):
        name = literal(args[i])
        if name is None:
            if i == 0 and "sudo" in variable_name(args[i]):
                i += 1  # "$sudo_cmd" apt-get ...: the command is the next word
                continue
            return  # "$program" ...: a program of the project's, or chosen at run time
        if name in WRAPPERS:
            yield name
            i += 1
            while i < len(args):
                option = literal(args[i])
                if option is None or not option.startswith("-") and "=" not in option:
                    if name == "timeout" and option is not None and option[:1].isdigit():
                        i += 1  # the duration
                        continue
                    break
                i += 2 if option in OPTIONS_WITH_VALUE else 1
                if option == "--":
                    break
            continue
        if name == "command" and len(args) > 1 and literal(args[1]) in ("-v", "-V"):
            return  # a lookup, not a call
        yield name
        return


def literal_tail(word):
    """The literal text that ends a word ("/checks.sh" of "$(dirname "$0")/checks.sh")."""
    parts = word.get("Parts", [])
    if len(parts) == 1 and parts[0].get("Type") == "DblQuoted":
        parts = parts[0].get("Parts", [])
    tail = ""
    for part in reversed(parts):
        if part.get("Type") not in ("Lit", "SglQuoted"):
            break
        tail = part.get("Value", "") + tail
    return tail


def walk(node, calls, functions, sourced=None):
    """Collects into CALLS the commands NODE calls, into FUNCTIONS the functions it defines
    and into SOURCED the ends of the paths of the files it sources."""
    if isinstance(node, dict):
        kind = node.get("Type")
        if kind == "FuncDecl":
            functions.add(node["Name"]["Value"])
        if kind == "CallExpr" and node.get("Args"):
            args = node["Args"]
            if sourced is not None and len(args) > 1 and literal(args[0]) in (".", "source"):
                sourced.append(literal_tail(args[1]).lstrip("/"))
            calls.extend(command_of(args))
        for value in node.values():
            walk(value, calls, functions, sourced)
    elif isinstance(node, list):
        for value in node:
            walk(value, calls, functions, sourced)



def syntax_tree(path):
    with open(path, "rb") as script:
        return json.loads(subprocess.run(["shfmt", "--tojson"], stdin=script,
                                         capture_output=True, check=True).stdout)


def library_functions():
    """The functions that scripts/lib/*.sh define for the scripts that source them."""
    functions = set()
    for name in os.listdir("scripts/lib"):
        if name.endswith(".sh"):
            walk(syntax_tree(os.path.join("scripts/lib", name)), [], functions)
    return functions


def script_commands(path, known_functions):
    """The external commands the shell script at PATH calls. Functions it takes from a file
    beside it that it sources (tests/cli/checks.sh) are its own."""
    calls, functions, sourced = [], set(known_functions), []
    walk(syntax_tree(path), calls, functions, sourced)
    for name in sourced:
        beside = os.path.join(os.path.dirname(path), name)
        if name.endswith(".sh") and os.path.isfile(beside):
            walk(syntax_tree(beside), [], functions)
    return {name for name in calls if name and name not in BUILTINS and name not in functions
            and name not in OPTIONAL and "/" not in name}


# Scripts that install nothing themselves, and the sets of the script that runs them.
SETS_OF_SCRIPTS_RUN_BY_OTHERS = {
    "scripts/test.sh": ["build", "tests"],  # through scripts/setup.sh --tests
    "scripts/run-example.sh": ["build"],  # through scripts/setup.sh
    "scripts/postgres-test-server.sh": ["postgres"],  # by the tests and bench/run.sh
    "scripts/patroni-test-cluster.sh": ["patroni"],  # by the tests
    # Sourced by the two above.
    "scripts/lib/postgres_test.sh": ["postgres"],
    "tests/cli/": ["build", "tests"],  # by CTest, from scripts/test.sh
    "tests/install/": ["build", "tests"],
    "tests/chaos/": ["build", "tests"],  # by CTest, from scripts/test.sh
    "tests/containers/scenarios.sh": ["podman", "containers"],  # by scripts/test-containers.sh
    # In the PostgreSQL stand-in image, whose Containerfile installs postgresql-15.
    "tests/containers/postgres/entrypoint.sh": ["postgres"],
    "scripts/lib/podman.sh": ["podman"],  # its functions run after esg_need podman
    "scripts/lib/ports.sh": ["build", "tests"],  # free_port, for the console tests (tests/cli)
}
# Commands called only when they are there.
OPTIONAL = {"sudo"}  # scripts/lib/packages.sh: to install as a user that is not root
# Debian's folders, and PostgreSQL's, whose server programs are not on PATH.
DEBIAN_PATH = ":".join(["/usr/sbin", "/usr/bin", "/sbin", "/bin"] +
                       sorted(glob.glob("/usr/lib/postgresql/*/bin")))


def load_sets():
    out = subprocess.run(["bash", "-c", ". scripts/lib/packages.sh && esg_sets && "
                          "echo \"${esg_recommends_left_out[*]}\""],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    sets = {}
    for line in out[:-1]:
        name, packages, commands = line.split("\t")
        sets[name] = (packages.split(), commands.split())
    return sets, set(out[-1].split())


def sets_of(path, text):
    found = []
    for match in re.finditer(r"^\s*esg_need ([a-z ]+)", text, re.M):
        found += match.group(1).split()
    for prefix, names in SETS_OF_SCRIPTS_RUN_BY_OTHERS.items():
        if path == prefix or prefix.endswith("/") and path.startswith(prefix):
            found += names
    return sorted(set(found))


def dpkg_paths(command):
    """The paths dpkg may know COMMAND's file by, in the order they are tried."""
    found = shutil.which(command, path=DEBIAN_PATH)
    if not found:
        return []
    # dpkg knows a file by the path its package gave (/bin/ls, /usr/bin/git).
    candidates = {found, os.path.realpath(found)}
    for path in list(candidates):
        for a, b in (("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/")):
            if path.startswith(a):
                candidates.add(b + path[len(a):])
            elif path.startswith(b):
                candidates.add(a + path[len(b):])
    return sorted(candidates)


def find_owners(commands, cache):
    """Puts in CACHE the Debian package whose file each of COMMANDS is, or None, from one dpkg
    call for all."""
    commands = [command for command in commands if command not in cache]
    paths = {command: dpkg_paths(command) for command in commands}
    wanted = sorted({path for candidates in paths.values() for path in candidates})
    owners = {}
    if wanted:
        out = subprocess.run(["dpkg", "-S", *wanted], capture_output=True, text=True).stdout
        for line in out.splitlines():
            head, _, path = line.rpartition(": ")
            diverted = re.match(r"diversion by (\S+) (from|to)$", head)
            owner = diverted.group(1) if diverted else head.split(",")[0].split(":")[0]
            owners.setdefault(path, owner)  # the first line of a path decides, as for one
    for command in commands:
        cache[command] = next((owners[p] for p in paths[command] if p in owners), None)


def closure(packages, cache):
    """PACKAGES and everything apt installs with them without recommends."""
    key = tuple(sorted(packages))
    if key not in cache:
        out = subprocess.run(
            ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
             "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *packages],
            capture_output=True, text=True, check=True).stdout
        cache[key] = {line.strip() for line in out.splitlines()
                      if line and not line.startswith(" ") and not line.startswith("<")}
        cache[key] |= {name.split(":")[0] for name in cache[key]}
    return cache[key]


def find_recommendations(packages, cache):
    """Puts in CACHE what each of PACKAGES recommends: a list of groups of alternatives (virtual
    names with their providers). One apt-cache call for all."""
    packages = sorted({package for package in packages if package not in cache})
    if not packages:
        return
    out = subprocess.run(
        ["apt-cache", "depends", "--no-depends", "--no-pre-depends", "--no-suggests",
         "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *packages],
        capture_output=True, text=True, check=True).stdout
    groups = group = providers = None
    for line in out.splitlines():
        if not line.startswith(" "):  # the next package's block
            groups, group, providers = [], [], []
            cache[line.strip()] = groups
            continue
        if line.startswith("    "):  # a provider of the virtual name above
            providers.append(line.strip())
            continue
        match = re.match(r"\s*(\|?)Recommends: <?([^>]+)>?", line)
        if not match:
            continue
        providers = []
        group.append((match.group(2), providers))
        if not match.group(1):  # the last alternative of its group
            groups.append(group)
            group = []
    for package in packages:
        cache.setdefault(package, [])


def is_installed(package):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                         capture_output=True, text=True).stdout
    return out.strip() == "install ok installed"


def chosen(entry, cache):
    """The package an entry A|B of a set stands for here: B if it is installed, else A."""
    alternatives = entry.split("|")
    if entry not in cache:
        cache[entry] = next((a for a in alternatives[1:] if is_installed(a)), alternatives[0])
    return cache[entry]


def is_required(package, cache):
    if package not in cache:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Priority}", package],
                             capture_output=True, text=True).stdout
        cache[package] = out.strip() == "required"
    return cache[package]


def main():
    sets, left_out = load_sets()
    scripts = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                              "*.sh", ".ci/run"], capture_output=True, text=True,
                             check=True).stdout.split()
    owners, closures, required, recommendations, choices = {}, {}, {}, {}, {}
    functions = library_functions()
    problems, n_commands, checked = [], 0, []
    for path in sorted(set(scripts)):
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as script:
            text = script.read()
        names = sets_of(path, text)
        unknown = [name for name in names if name not in sets]
        if unknown:
            problems.append(f"{path}: unknown package sets: {' '.join(unknown)}")
            continue
        packages = [chosen(entry, choices) for name in names for entry in sets[name][0]]
        promised = {c for name in names for c in sets[name][1]}
        checked.append((path, names, packages, sorted(script_commands(path, functions) | promised)))
    # Asked of apt and dpkg once for all: one call each for every package and command.
    find_recommendations([p for _, _, packages, _ in checked for p in packages], recommendations)
    find_owners({c for _, _, _, commands in checked for c in commands}, owners)
    for path, names, packages, commands in checked:
        installed = closure(packages, closures) if packages else set()
        for package in packages:
            for group in recommendations[package]:
                names_in_group = {n for name, providers in group for n in [name, *providers]}
                if names_in_group & installed or all({n, *p} & left_out for n, p in group):
                    continue
                problems.append(f"{path}: {package} recommends {' | '.join(n for n, _ in group)}"
                                ", which its sets leave out: add it to a set, or to "
                                "esg_recommends_left_out with the reason")
        for command in commands:
            n_commands += 1
            owner = owners[command]
            if owner is None:
                problems.append(f"{path}: calls '{command}', which no Debian package here "
                                f"provides in {DEBIAN_PATH}")
            elif not is_required(owner, required) and owner not in installed:
                problems.append(f"{path}: calls '{command}' (package {owner}), which its sets "
                                f"({' '.join(names) or 'none'}) do not install")
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"check-packages: {len(scripts)} scripts, {n_commands} commands, each from a package "
          "of Priority required or one its sets install")
    return 0


if __name__ == "__main__":
    sys.exit(main())
