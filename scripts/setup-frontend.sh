#!/usr/bin/env bash
# Install the browser libraries from the npm registry into static/vendor/ (git-ignored).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
front="$root/scripts/frontend"
vendor="$root/static/vendor"
if [ -f "$front/package-lock.json" ]; then
  npm ci --prefix "$front" --no-audit --no-fund --loglevel=error
else
  npm install --prefix "$front" --no-audit --no-fund --loglevel=error
fi
mkdir -p "$vendor"
modules="$front/node_modules"
cp "$modules/htmx.org/dist/htmx.min.js" "$vendor/htmx.min.js"
cp "$modules/htmx-ext-sse/dist/sse.min.js" "$vendor/htmx-sse.min.js" 2>/dev/null \
  || cp "$modules/htmx-ext-sse/sse.js" "$vendor/htmx-sse.min.js"
cp "$modules/uplot/dist/uPlot.iife.min.js" "$vendor/uPlot.iife.min.js"
cp "$modules/uplot/dist/uPlot.min.css" "$vendor/uPlot.min.css"
cp "$modules/cytoscape/dist/cytoscape.min.js" "$vendor/cytoscape.min.js"
echo "front-end libraries installed in static/vendor/"
