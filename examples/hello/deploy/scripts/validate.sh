#!/bin/sh
# ValidateService: the process is up. (The group's HTTP health check runs
# after this hook.) A revision that carries a BROKEN file fails here:
# `gantry demo` commits one to show an automatic rollback.
if [ -f "${GANTRY_BUNDLE_DIR}/BROKEN" ]; then
  echo "this revision is marked broken: failing ValidateService" >&2
  exit 1
fi
kill -0 "$(cat "${GANTRY_INSTALL_ROOT}/hello/hello.pid")"
