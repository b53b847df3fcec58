// The buyers' page (/buyers/): the API key entered once (kept in this tab's session storage),
// the catalogue, samples, quality and licence, and exports requested, polled and downloaded.
// Every call carries the key in the Authorization header; images and files are fetched with it
// and handed to the page as blob: URLs (nothing is public).
"use strict";
(function () {
  const STORE = "crowdmint.buyerKey";
  const form = document.getElementById("buyer-key-form");
  const input = document.getElementById("buyer-key");
  const statusLine = document.getElementById("buyer-status");
  const list = document.getElementById("datasets");
  const template = document.getElementById("dataset-template");

  const key = () => sessionStorage.getItem(STORE) || "";
  const headers = (extra) => Object.assign({ Authorization: "Bearer " + key() }, extra || {});

  async function api(path, options) {
    const response = await fetch(path, Object.assign({ headers: headers() }, options || {}));
    let body = null;
    if ((response.headers.get("Content-Type") || "").includes("json")) body = await response.json();
    if (!response.ok) throw new Error((body && body.detail) || response.status + " " + response.statusText);
    return body;
  }

  function text(node, value) { node.textContent = value == null ? "" : String(value); }
  function pct(value) { return value == null ? "n/a" : (value * 100).toFixed(1) + "%"; }
  function num(value) { return value == null ? "n/a" : Number(value).toFixed(3); }

  async function blobUrl(url) {
    const response = await fetch(url, { headers: headers() });
    if (!response.ok) throw new Error("download refused: " + response.status);
    return URL.createObjectURL(await response.blob());
  }

  async function samples(dataset, tbody) {
    const page = await api(`/api/v1/datasets/${dataset.id}/records/?page_size=5`);
    tbody.replaceChildren();
    for (const record of page.results) {
      const row = document.createElement("tr");
      const cells = [record.id, null, record.label, num(record.confidence), record.decided_by];
      const names = ["#", "content", "label", "confidence", "decided by"];
      cells.forEach((value, index) => {
        const cell = document.createElement("td");
        cell.dataset.label = names[index]; // the column's name, shown beside it on a phone
        if (index === 1) {
          if (record.image_url) {
            const image = document.createElement("img");
            image.alt = "item " + record.id;
            image.width = 96;
            blobUrl(record.image_url).then((url) => { image.src = url; }, () => {});
            cell.append(image);
          } else {
            text(cell, record.text);
          }
        } else {
          text(cell, value);
        }
        row.append(cell);
      });
      tbody.append(row);
    }
    if (!page.results.length) {
      const row = document.createElement("tr");
      const cell = document.createElement("td");
      cell.colSpan = 5;
      text(cell, "No accepted records yet.");
      row.append(cell);
      tbody.append(row);
    }
  }

  function showExport(item, exp) {
    item.replaceChildren();
    item.dataset.exportId = exp.id;
    const label = document.createElement("span");
    text(label, `export ${exp.id} · ${exp.format} · ${exp.status} · ${exp.progress}% · ${exp.records} records · ${exp.size_bytes} bytes `);
    item.append(label);
    if (exp.status === "failed") {
      const why = document.createElement("small");
      text(why, exp.error);
      item.append(why);
    }
    if (exp.download_url) {
      const button = document.createElement("button");
      button.type = "button";
      text(button, "Download");
      button.dataset.testid = "download";
      button.addEventListener("click", async () => {
        const link = document.createElement("a");
        link.href = await blobUrl(exp.download_url);
        link.download = `crowdmint-export-${exp.id}.${exp.format === "label_studio" ? "json" : ["coco", "yolo"].includes(exp.format) ? "zip" : exp.format}`;
        link.dataset.testid = "downloaded";
        link.textContent = "saved " + link.download;
        item.append(link);
        link.click();
      });
      item.append(button);
    }
  }

  async function poll(item, id) {
    for (let attempt = 0; attempt < 600; attempt += 1) {
      const exp = await api(`/api/v1/exports/${id}/`);
      showExport(item, exp);
      if (["done", "failed", "expired"].includes(exp.status)) return;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  function render(dataset) {
    const node = template.content.firstElementChild.cloneNode(true);
    node.dataset.testid = "dataset-" + dataset.id;
    const field = (name) => node.querySelector(`[data-field="${name}"]`);
    text(field("name"), dataset.name);
    text(field("kind"), `${dataset.task} · ${dataset.data_kind}`);
    text(field("description"), dataset.description);
    text(field("meta"), `${dataset.accepted_count} accepted of ${dataset.item_count} items · classes: ${dataset.classes.join(", ")} · licence ${dataset.licence} · ${dataset.is_open ? "open" : "closed"}`);
    const agreement = dataset.quality.agreement;
    text(field("quality"), `Quality: mean posterior ${num(dataset.quality.mean_posterior)}` +
      (agreement ? ` · agreement ${pct(agreement.percent_agreement)} · Fleiss' κ ${num(agreement.fleiss_kappa)} · Krippendorff's α ${num(agreement.krippendorff_alpha)}` : " · no refit yet"));
    text(field("access"), dataset.granted ? "You hold a grant for this dataset."
      : dataset.for_sale ? `Price ${dataset.price_display}: transfer it to ${dataset.treasury} and POST the transaction hash to /api/v1/datasets/${dataset.id}/purchase (with the paying wallet's signature of the text the API gives), or ask a moderator.`
      : "Not sold on-chain: ask a moderator for a grant.");
    if (dataset.granted) {
      field("granted-only").hidden = false;
      samples(dataset, field("samples")).catch((error) => text(field("samples"), error.message));
      const exportForm = node.querySelector(".export-form");
      for (const option of exportForm.querySelectorAll("option[data-boxes]")) {
        if (dataset.task !== "boxes") option.remove();
      }
      exportForm.addEventListener("submit", async (event) => {
        event.preventDefault();
        const data = { format: exportForm.elements.format.value };
        if (exportForm.elements.min_confidence.value) data.min_confidence = exportForm.elements.min_confidence.value;
        const item = document.createElement("li");
        field("exports").prepend(item);
        try {
          const exp = await api(`/api/v1/datasets/${dataset.id}/exports/`, {
            method: "POST",
            headers: headers({ "Content-Type": "application/json" }),
            body: JSON.stringify(data),
          });
          showExport(item, exp);
          await poll(item, exp.id);
        } catch (error) {
          text(item, "Refused: " + error.message);
        }
      });
    }
    return node;
  }

  async function load() {
    list.replaceChildren();
    if (!key()) { text(statusLine, "Enter the API key a moderator issued you."); return; }
    try {
      const datasets = await api("/api/v1/datasets/");
      text(statusLine, `${datasets.length} datasets; you hold grants for ${datasets.filter((d) => d.granted).length}.`);
      datasets.forEach((dataset) => list.append(render(dataset)));
    } catch (error) {
      text(statusLine, "The key was refused: " + error.message);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(STORE, input.value.trim());
    input.value = "";
    load();
  });
  document.getElementById("buyer-forget").addEventListener("click", () => {
    sessionStorage.removeItem(STORE);
    load();
  });
  load();
})();
