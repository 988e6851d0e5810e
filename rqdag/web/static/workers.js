/* The workers page: refresh the rows in place. */
"use strict";
document.addEventListener("DOMContentLoaded", () => rqdag.refreshRows("workers-rows", 3000));
