// Buy with the official x402 v1 TypeScript client (x402-fetch), unmodified.
// env: API_URL, TOKEN, PRIVATE_KEY, RPC_URL, QUANTITY (the chain: Base Sepolia, 84532, as in the tests)
import { wrapFetchWithPayment } from "x402-fetch";
import { createWalletClient, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { baseSepolia } from "viem/chains";

const { API_URL, TOKEN, PRIVATE_KEY, RPC_URL, QUANTITY } = process.env;
const wallet = createWalletClient({ account: privateKeyToAccount(PRIVATE_KEY), chain: baseSepolia, transport: http(RPC_URL) });
// The client's own cap per payment (default 0.1 USDC): this purchase costs more.
const fetchWithPayment = wrapFetchWithPayment(fetch, wallet, BigInt(100_000_000));
const reply = await fetchWithPayment(`${API_URL}/api/mint/${TOKEN}`, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ quantity: Number(QUANTITY) }),
});
console.log(JSON.stringify({ status: reply.status, body: await reply.json() }));
