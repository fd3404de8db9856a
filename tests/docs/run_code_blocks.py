"""Runs the code blocks of a document as a reader would, so that the document cannot drift from
the library: the project is installed into a temporary $HOME/.local, and the blocks run in order
in one bash shell in a fresh temporary folder.

Usage: /usr/bin/python3 run_code_blocks.py SOURCE_DIR BUILD_DIR DOCUMENT.md [FOLDER]
FOLDER's files (the document's own folder, say) are copied into the shell's folder first.

How each fenced block is used, by its info string:
  c FILE, python FILE, cmake FILE, ...   appended to FILE (the blocks naming a file make it up,
                                         in order, at the point where each stands)
  c                                      a whole program: compiled against the installed
                                         library (pkg-config in $HOME/.local) with -Wall
                                         -Wextra -Werror (and the build's sanitizers), and run
  sh                                     run (bash, -e -u -o pipefail); exports carry on
  sh install                             shown, not run: the harness installs the tree under
                                         test into $HOME/.local before the first block, for
                                         every document (this block must say cmake --install)
  console, text, anything else           output or prose: not run
Every "localhost:PORT" in the document is given a free port of this machine instead, the same
one each time it appears. `python3` is Debian's, and sees the Python reference (eventsourcing and
eventsourcing-grpc, at ../shared/reference or ESG_REFERENCE_DIR) as if it were installed; where
the reference is absent, the commands that start with `python3` are skipped, with a message.

Exit status 0 when the shell ran to its end, 1 otherwise (its output says where it stopped).
"""
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def blocks(text):
    """(info words, body) of each fenced block, in order."""
    for match in FENCE.finditer(text):
        yield match.group(1).split(), match.group(2)


def script_of(text, build_dir, has_python_reference):
    """The bash script that does what the document's blocks say, in order."""
    lines = ["set -euo pipefail",
             f'cmake --install {shlex.quote(build_dir)} --prefix "$HOME/.local" >/dev/null']
    n_programs = 0
    for info, body in blocks(text):
        language = info[0] if info else ""
        if language in ("console", "text", "") or (language == "sh" and info[1:] not in ([],
                                                                                         ["install"])):
            continue
        if language == "sh" and info[1:] == ["install"]:  # done first, from the tree under test
            if "cmake --install" not in body:
                raise SystemExit("the 'sh install' block no longer says cmake --install")
        elif language == "sh":
            line = text[:text.find(body)].count("\n") + 1
            lines.append(f"echo '---- the commands at line {line}'")
            if not has_python_reference:  # a Python client needs the reference's package
                body = re.sub(r"^(python3 .*)$", r"echo 'skipped (no Python reference): \1'",
                              body, flags=re.M)
            lines.append(body)
        elif len(info) >= 2:  # a file, or a part of one
            lines.append(f"cat >> {shlex.quote(info[1])} <<'ESG_END_OF_BLOCK'\n{body}"
                         "ESG_END_OF_BLOCK")
        elif language == "c":  # a whole program
            n_programs += 1
            name = f"program_{n_programs}"
            lines.append(f"cat > {name}.c <<'ESG_END_OF_BLOCK'\n{body}ESG_END_OF_BLOCK")
            lines.append(f"echo '---- program {n_programs}'")
            lines.append(f"cc -std=c17 -Wall -Wextra -Werror $ESG_SANITIZE_FLAGS {name}.c "
                         f"-o {name} $(pkg-config --cflags --libs eventsourcing_grpc)")
            lines.append(f"./{name}")
    return "\n".join(lines) + "\n"


def sanitizer_flags(build_dir):
    """The -fsanitize flags the build used (ESG_SANITIZE in its CMake cache), which a program
    linked against its library needs too: a sanitized library wants its runtime loaded first."""
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt"), encoding="utf-8") as f:
            match = re.search(r"^ESG_SANITIZE:STRING=(.*)$", f.read(), re.M)
    except OSError:
        match = None
    return f"-fsanitize={match.group(1)}" if match and match.group(1) else ""


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__)
        return 2
    source_dir, build_dir, document = (os.path.abspath(a) for a in sys.argv[1:4])
    files = os.path.abspath(sys.argv[4]) if len(sys.argv) == 5 else None
    with open(document, encoding="utf-8") as f:
        text = f.read()
    ports = {}
    text = re.sub(r"localhost:(\d+)",
                  lambda m: f"localhost:{ports.setdefault(m.group(1), free_port())}", text)
    reference = os.environ.get("ESG_REFERENCE_DIR",
                               os.path.join(os.path.dirname(source_dir), "shared", "reference"))
    has_reference = os.path.isdir(os.path.join(reference, "eventsourcing_grpc"))
    script = script_of(text, build_dir, has_reference)
    with tempfile.TemporaryDirectory() as home:
        local = os.path.join(home, ".local")
        tools = os.path.join(home, "tools")  # python3: Debian's, which has grpcio
        os.mkdir(tools)
        os.symlink("/usr/bin/python3", os.path.join(tools, "python3"))
        env = dict(os.environ, HOME=home, GRPC_DNS_RESOLVER="native",
                   ESG_SANITIZE_FLAGS=sanitizer_flags(build_dir),
                   PATH=os.pathsep.join([os.path.join(local, "bin"), tools,
                                         os.environ.get("PATH", "")]))
        # Where the install's libraries and pkg-config files go (lib or lib/<multiarch>).
        env["PKG_CONFIG_PATH"] = os.pathsep.join(
            os.path.join(local, d, "pkgconfig")
            for d in ("lib", "lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu"))
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            os.path.join(local, d) for d in ("lib", "lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu"))
        for name in list(env):  # nothing of the caller's application settings leaks in
            if name.endswith(("_GRPC_SERVER_ADDRESS", "_SQLITE_DBNAME")) or name in (
                    "PERSISTENCE_MODULE", "SQLITE_DBNAME", "ESG_TOPIC_PATH", "SYSTEM_TOPIC"):
                del env[name]
        if has_reference:
            env["PYTHONPATH"] = os.pathsep.join([reference, os.path.join(reference, "shim")])
        else:
            print(f"note: no Python reference at {reference}: its client's step is skipped")
        work = os.path.join(home, "work")
        if files is not None:
            shutil.copytree(files, work)
        else:
            os.mkdir(work)
        with open(os.path.join(home, "document.sh"), "w") as f:
            f.write(script)
        # Background jobs of the document are ended with the shell's process group.
        process = subprocess.Popen(["bash", os.path.join(home, "document.sh")], cwd=work, env=env,
                                   start_new_session=True)
        try:
            rc = process.wait(timeout=600)
        except subprocess.TimeoutExpired:
            rc = -1
            print("the document's commands took more than 600 s")
        finally:
            try:
                os.killpg(process.pid, 15)
            except ProcessLookupError:
                pass
    print(f"{os.path.basename(document)}: {'1 passed, 0 failed' if rc == 0 else '0 passed, 1 failed'}")
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
