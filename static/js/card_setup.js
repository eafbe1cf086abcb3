// The card form of payments/card_change.html: Stripe Elements collects the card in Stripe's
// own frame; once Stripe confirms the SetupIntent, the form posts its id to the portal, which
// reads the card's brand, last four digits and expiry from Stripe.
(function () {
  "use strict";
  var form = document.getElementById("card-setup");
  if (!form || typeof Stripe === "undefined") {
    return;
  }
  var stripe = Stripe(form.dataset.publishableKey);
  var elements = stripe.elements({
    clientSecret: form.dataset.clientSecret,
    locale: document.documentElement.lang || "auto",
  });
  var payment = elements.create("payment");
  payment.mount("#card-element");
  var errors = document.getElementById("card-errors");
  var button = form.querySelector("button[type=submit]");

  form.addEventListener("submit", function (event) {
    if (form.elements.setup_intent.value) {
      return; // confirmed: let the form post
    }
    event.preventDefault();
    button.disabled = true;
    errors.textContent = "";
    stripe
      .confirmSetup({
        elements: elements,
        confirmParams: { return_url: form.dataset.returnUrl },
        redirect: "if_required",
      })
      .then(function (result) {
        if (result.error) {
          errors.textContent = result.error.message;
          button.disabled = false;
          return;
        }
        form.elements.setup_intent.value = result.setupIntent.id;
        form.submit();
      });
  });
})();
