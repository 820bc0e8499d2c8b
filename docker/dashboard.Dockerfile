# syntax=docker/dockerfile:1
# Dashboard: bull-board, the JSON API and /metrics on port 3000. The same image holds the
# `settle` CLI and the schema (the compose file's one-shot schema job runs `settle schema`).
#
# Built from the repository root (docker compose does this):
#   docker build -f docker/dashboard.Dockerfile -t settlement-dashboard .
# Stages: manifests (package.json files only, so dependency layers stay cached across source
# edits) → build (npm ci + `nx run dashboard:build` = esbuild bundle dist/apps/dashboard/main.js) →
# prod-deps (npm ci --omit=dev) → runtime (bundle + production node_modules, user `node`).
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
# Keep the root and workspace package.json files (npm ci needs every workspace's manifest).
RUN mkdir /manifests \
 && cp package.json package-lock.json .npmrc /manifests/ \
 && for f in apps/*/package.json libs/*/package.json; do mkdir -p "/manifests/$(dirname "$f")" && cp "$f" "/manifests/$f"; done

FROM ${NODE_IMAGE} AS build
WORKDIR /src
ENV NX_DAEMON=false NX_NO_CLOUD=true NX_SKIP_NX_CACHE=true
COPY --from=manifests /manifests/ ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npx nx run dashboard:build --outputStyle=static

FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY --from=manifests /manifests/ ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# package.json gives "type": "module" to the ESM bundle.
COPY --from=manifests /manifests/package.json ./package.json
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /src/dist/apps/dashboard/ ./
COPY config/settlement.yaml ./config/settlement.yaml
COPY docker/healthcheck.mjs ./healthcheck.mjs
COPY schema/ ./schema/
# `settle <command>` inside the container; without a command it prints the help, not a server.
RUN printf '#!/bin/sh\n[ "$#" -eq 0 ] && set -- help\nexec node --enable-source-maps /app/main.js "$@"\n' > /usr/local/bin/settle \
 && chmod 0755 /usr/local/bin/settle
EXPOSE 3000
USER node
CMD ["node", "--enable-source-maps", "main.js"]
