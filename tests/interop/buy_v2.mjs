// Buy with the official x402 v2 TypeScript client (@x402/fetch + @x402/evm), unmodified.
// env: API_URL, TOKEN, PRIVATE_KEY, ASSET (the USDC the server prices in), NETWORK (eip155:<id>), QUANTITY
import { wrapFetchWithPaymentFromConfig, decodePaymentResponseHeader } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

const { API_URL, TOKEN, PRIVATE_KEY, ASSET, NETWORK, QUANTITY } = process.env;
const account = privateKeyToAccount(PRIVATE_KEY);
// Spend controls are the client's own safety net: our dev chain's USDC is not one of its default
// assets, so the buyer allows it explicitly (up to 100 USDC a payment).
const fetchWithPayment = wrapFetchWithPaymentFromConfig(fetch, {
  schemes: [{ network: NETWORK, client: new ExactEvmScheme(account) }],
  spendControls: { allowedAssets: [{ network: NETWORK, asset: ASSET, maxAmountPerPayment: "100000000" }] },
});
const reply = await fetchWithPayment(`${API_URL}/api/mint/${TOKEN}`, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ quantity: Number(QUANTITY) }),
});
const body = await reply.json();
const settlement = reply.headers.get("PAYMENT-RESPONSE");
console.log(JSON.stringify({ status: reply.status, body, settlement: settlement ? decodePaymentResponseHeader(settlement) : null }));
