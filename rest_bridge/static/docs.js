"use strict";
// Swagger UI over the bridge's own /openapi.json, from files the bridge serves itself.

window.addEventListener("DOMContentLoaded", () => {
  const node = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: node.dataset.url,
    domNode: node,
    deepLinking: true,
    validatorUrl: null, // no badge fetched from another host
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: (request) => {
      Object.assign(request.headers, Api.authHeaders({}));
      return request;
    },
  });
});
