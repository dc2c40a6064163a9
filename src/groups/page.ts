// The collaboration page: chat lines and whiteboard strokes of one group,
// live from the events stream. Strokes are records (payload: colour, width,
// points); erasing one deletes its record. Inline, small, no libraries; the
// script reaches the elements by their ids (c canvas, k colour, er erase,
// l chat log, f form, t text), as browsers expose them on window.

export const groupPage = (g: string): string => `<!doctype html><meta charset=utf-8><title>Canopy group</title>
<style>body{font:14px sans-serif;display:flex;gap:1em}canvas,#l{border:1px solid #999}#l{width:20em;height:25em;overflow:auto}</style>
<body data-strokes=0><div><canvas id=c width=640 height=400></canvas><br><input id=k type=color> <label><input id=er type=checkbox> erase</label></div>
<div><div id=l></div><form id=f><input id=t maxlength=500> <button>send</button></form></div><script>
const A='/api/groups/${g}',S=new Map,C=new Set,x=c.getContext('2d'),q=(u,o)=>fetch(A+u,o),P=(type,payload)=>q('/records',{method:'POST',body:JSON.stringify({type,payload})}),E=e=>[e.offsetX,e.offsetY]
let p
function D(){x.clearRect(0,0,640,400);for(const s of S.values()){x.strokeStyle=s.c;x.lineWidth=s.w;x.beginPath();for(let i=0;i<s.p.length;)x.lineTo(s.p[i++],s.p[i++]);x.stroke()}document.body.dataset.strokes=S.size}
function R(r,g){g||=r.deleted;if(r.type=='stroke'){g?S.delete(r.id):S.set(r.id,JSON.parse(r.payload));D()}else if(r.type=='chat'&&!g&&!C.has(r.id)){C.add(r.id);const d=document.createElement('div');d.textContent=r.author.slice(0,8)+': '+r.payload;l.append(d);l.scrollTop=1e9}}
c.onpointerdown=e=>{const[a,b]=E(e);if(!er.checked)return p=[a,b];for(const[i,s]of S)for(let j=0;j<s.p.length;j+=2)if(Math.hypot(s.p[j]-a,s.p[j+1]-b)<6)return q('/records/'+i,{method:'DELETE'})}
c.onpointermove=e=>{if(p&&p.length<999){p.push(...E(e));x.lineTo(...E(e));x.stroke()}}
c.onpointerup=()=>{p?.length>2&&P('stroke',JSON.stringify({c:k.value,w:3,p}));p=0}
f.onsubmit=e=>{e.preventDefault();t.value&&P('chat',t.value);t.value=''}
new EventSource(A+'/events').addEventListener('record',m=>{const d=JSON.parse(m.data);R(d.record,d.change=='removed')})
q('/records').then(r=>r.json()).then(j=>j.records.forEach(r=>R(r)))
</script>`
