#!/bin/sh
# ValidateService: the installed binary is the one the pipeline built and
# its process is up. (The group's HTTP health check runs after this hook.)
# APP_VERSION is a revision variable: the build exported it, the deploy
# action passed it on, and a rollback carries it along with its revision.
# A revision that carries a BROKEN file fails here: `gantry demo` commits
# one to show an automatic rollback.
if [ -f "${GANTRY_BUNDLE_DIR}/BROKEN" ]; then
  echo "this revision is marked broken: failing ValidateService" >&2
  exit 1
fi
: "${APP_VERSION:?the revision carries no APP_VERSION variable; deploy a run's artifact (gantry deploy create --artifact RUN/app)}"
installed="$("${GANTRY_INSTALL_ROOT}/hello/bin/hello" -version)"
if [ "$installed" != "$APP_VERSION" ]; then
  echo "installed hello is $installed, the revision was built as $APP_VERSION" >&2
  exit 1
fi
kill -0 "$(cat "${GANTRY_INSTALL_ROOT}/hello/hello.pid")"
echo "hello $installed is running"
