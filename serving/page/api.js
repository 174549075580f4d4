// The API reference on the service's index page: Swagger UI from the service's own files.
// No validator badge (it would call validator.swagger.io) and no top bar (it links to swagger.io).
window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: "./docs.json",
    dom_id: "#swagger-ui",
    deepLinking: false,
    validatorUrl: null,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    supportedSubmitMethods: [],  // a reference, not a console: keys do not belong in a docs page
  });
});
