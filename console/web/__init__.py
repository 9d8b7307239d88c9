"""The web machinery every view uses: endpoint declarations and their rendering, JSON
shapes and the OpenAPI document built from them, and the URL builder."""
