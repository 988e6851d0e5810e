/* The runs list: refresh the rows in place. */
"use strict";
document.addEventListener("DOMContentLoaded", () => rqdag.refreshRows("runs-rows", 4000));
